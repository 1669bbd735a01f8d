"""Benchmark: do the ``nodes`` + ``kubernetes`` phases scale with the number of nodes?

H workers (plus one control plane) are real OpenSSH servers in network namespaces
(tests/fixtures/sshhosts.py, needs root). Their shimmed steps take a fixed time:
every ``apt-get`` call of the boot-time preparation and every ``kubeadm`` call (version,
init, token, join) sleeps STEP seconds. Boot starts on all hosts at t=0, together with
the ``nodes`` phase, which waits for it; then the ``kubernetes`` phase inits and joins.
The wall time of nodes+kubernetes is measured for H = 1, 8, 24 and T(24)/T(1) printed.
Done in parallel, the ratio stays near 1; done one node after the other it would be ~24.

    sudo python bench/fanout.py [--step 1.0] [--sizes 1,8,24] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparkube.env import Environment
from sparkube.nodes.phase import (
    KEY_FILE,
    run_kubernetes_phase,
    run_nodes_phase,
    ssh_settings,
)
from sparkube.nodes.prepare import render_prepare_script
from sparkube.spec import ClusterSpec
from tests.fixtures.sshhosts import SshLab, skip_reason


def measure(workers: int, step: float) -> float:
    lab = SshLab.create()
    try:
        with tempfile.TemporaryDirectory() as home:
            env = Environment(
                environ={"HOME": home, "SPARKUBE_HOME": f"{home}/.sparkube"},
                cwd=Path(home),
                interactive=False,
            )
            spec = ClusterSpec(name="bench", workers=workers)
            lab.client_key(env.cluster_dir(spec.name, create=True) / KEY_FILE)
            cluster = lab.cluster(spec.name, workers=workers)
            for host in lab.hosts.values():
                host.set_delay("apt-get", step)
                host.set_delay("kubeadm", step)
            settings = ssh_settings(env, spec.name, user=lab.user, boot_timeout=60.0)
            started = time.monotonic()
            lab.boot(render_prepare_script(spec))  # instances booting
            run_nodes_phase(env=env, cluster=cluster, settings=settings, interval=0.25)
            run_kubernetes_phase(
                spec=spec, env=env, cluster=cluster, settings=settings, readiness=None
            )
            return time.monotonic() - started
    finally:
        lab.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=float, default=1.0, help="seconds per shimmed step")
    parser.add_argument("--sizes", default="1,8,24", help="worker counts H")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (best kept)")
    args = parser.parse_args()
    reason = skip_reason()
    if reason:
        print(f"bench/fanout.py {reason}", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]
    times: dict[int, float] = {}
    print(f"step = {args.step:.2f} s per apt-get/kubeadm call; {os.cpu_count()} CPUs")
    print(f"{'H workers':>10} {'nodes':>6} {'T (s)':>8}")
    for h in sizes:
        times[h] = min(measure(h, args.step) for _ in range(args.repeat))
        print(f"{h:>10} {h + 1:>6} {times[h]:>8.2f}", flush=True)
    lo, hi = min(sizes), max(sizes)
    ratio = times[hi] / times[lo]
    print(f"T({hi})/T({lo}) = {ratio:.2f}  (target <= 1.3; sequential would be ~{hi / lo:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
