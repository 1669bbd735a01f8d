"""Benchmark: ``sparkube up`` of 1 control plane + 2 workers on the real-node test bed
against moto, the first job with and without the workers' pre-pull of the Spark image,
and ``down``.

The same set-up as ``test_up_on_moto_brings_its_instances_up_as_real_nodes``
(tests/integration/test_real_nodes.py): an in-process moto server on loopback
(tests/fixtures/moto_server.py), the bed (tests/fixtures/nodebed.py; it waits for the
machine's one bed lock), moto's instances booted as its machines and S3/metadata for the
pods (tests/fixtures/motobed.py), and the bed's kubeadm settings merged into what
sparkube renders (``nodebed.with_vm_kubeadm``). Measured in one run:

1. ``up`` (the CLI in-process): ``up_s`` to its return, ``ready_s`` to the end of its
   kubernetes phase (which ends when every node is Ready), and each phase's seconds as
   sparkube's own progress reports them (``RichReporter.phase_done``).
2. The nodes' ``kubeletVersion`` and ``containerRuntimeVersion``.
3. ``first_job_s``: ``sparkube submit`` of SparkPi (argument 2, 1 executor) to the first
   time its driver pod is seen Running (polled every 0.5 s). ``with_prepull``: after
   the workers' background pre-pull (prepare.sh) has finished, the default. Then
   ``without_prepull``: the first job's pods are deleted and the Spark image removed
   from both workers' containerd (``ctr -n k8s.io images rm --sync`` of every name of
   the image, so its content goes too), and the same job submitted again: its driver's
   node pulls the image through the registry mirror, as a worker would without the
   pre-pull. The same cluster and warm control plane, so the difference is the pull.
4. Per node after the first job: memory (RSS and page cache of the node's cgroup) and
   disk (upper layer + containerd state, ``du``).
5. ``down_s``: ``sparkube down`` to the machines gone.

No timed assertions; a failed step exits non-zero. The last line is one JSON object.

    sudo .venv/bin/python bench/nodes.py     # after bash tools/nodes/build.sh
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sparkube.cli import progress  # noqa: E402
from sparkube.cli.app import run as cli_run  # noqa: E402
from sparkube.env import Environment  # noqa: E402
from sparkube.nodes.prepare import full_image_ref  # noqa: E402
from sparkube.spark.image import SPARK_IMAGE  # noqa: E402
from tests.fixtures.common import isolated_environment  # noqa: E402
from tests.fixtures.moto_server import reset_moto, serve_moto  # noqa: E402
from tests.fixtures.motobed import MotoMachines, PodServices, default_subnet  # noqa: E402
from tests.fixtures.nodebed import NodeBed, problem, up_flags, with_vm_kubeadm  # noqa: E402
from tests.fixtures.sparklayer import spark_dir  # noqa: E402

CLUSTER = "bed"
NAMES = ("control-plane", "worker-1", "worker-2")
ADMIN = "kubectl --kubeconfig /etc/kubernetes/admin.conf"
SPARK_LAYER = spark_dir()


def sparkube(env: Environment, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli_run(list(args), env=env, stdout=out, stderr=err)
    if code != 0:
        raise SystemExit(f"sparkube {' '.join(args)} failed ({code}):\n{err.getvalue()[-4000:]}")
    return out.getvalue(), err.getvalue()


def kubectl_json(bed: NodeBed, args: str) -> Any:
    return json.loads(bed.run("control-plane", f"{ADMIN} {args} -o json").stdout)


def first_job(bed: NodeBed, env: Environment) -> dict[str, Any]:
    """Submit SparkPi in a thread; seconds to its driver pod Running, and to the end."""
    before = {
        p["metadata"]["name"]
        for p in kubectl_json(bed, "-n spark get pods -l sparkube.io/role=driver")["items"]
    }
    result: dict[str, Any] = {}

    def submit() -> None:
        try:
            result["out"] = sparkube(
                env, "submit", "pi.jar", "--cluster", CLUSTER,
                "--class", "org.apache.spark.examples.SparkPi", "--executors", "1", "2",
            )  # fmt: skip
        except SystemExit as e:
            result["error"] = str(e)

    t0 = time.monotonic()
    thread = threading.Thread(target=submit, daemon=True)
    thread.start()
    running_s = None
    node = ""
    while running_s is None and time.monotonic() - t0 < 900:
        pods = kubectl_json(bed, "-n spark get pods -l sparkube.io/role=driver")["items"]
        for p in pods:
            if p["metadata"]["name"] not in before and p["status"].get("phase") == "Running":
                running_s = time.monotonic() - t0
                node = p["spec"].get("nodeName", "")
        if running_s is None:
            if not thread.is_alive():
                break
            time.sleep(0.5)
    thread.join(900)
    done_s = time.monotonic() - t0
    if "error" in result or running_s is None:
        raise SystemExit(result.get("error") or "the driver pod never ran")
    if "Pi is roughly 3.1" not in result["out"][0]:
        raise SystemExit(f"SparkPi printed no result: {result['out'][0][-2000:]}")
    return {"running_s": round(running_s, 1), "done_s": round(done_s, 1), "node": node}


def remove_spark_image(bed: NodeBed) -> None:
    """Delete the finished job's pods, then every name of the Spark image from the
    workers' containerd (the CRI keeps it under its tag, digest and image id)."""
    bed.run("control-plane", f"{ADMIN} -n spark delete pods --all --wait=true")
    ref = full_image_ref(SPARK_IMAGE.ref)
    for name in NAMES[1:]:
        listing = bed.run(name, "ctr -n k8s.io images ls").stdout.splitlines()[1:]
        rows = [line.split() for line in listing if line.strip()]
        digest = next(r[2] for r in rows if r[0] == ref)
        names = [r[0] for r in rows if r[2] == digest]
        bed.run(name, ["ctr", "-n", "k8s.io", "images", "rm", "--sync", *names])
        left = bed.run(name, "ctr -n k8s.io images ls -q").stdout.split()
        if ref in left:
            raise SystemExit(f"{name} still has {ref}")


def main() -> None:
    reason = problem()
    if reason:
        raise SystemExit(f"the bed cannot run: {reason}")
    phases: dict[str, float] = {}
    ends: dict[str, float] = {}
    done = progress.RichReporter.phase_done

    def record(self: progress.RichReporter, phase: str, summary: str, seconds: float) -> None:
        phases[phase] = round(seconds, 1)
        ends[phase] = time.monotonic()
        done(self, phase, summary, seconds)

    with (
        tempfile.TemporaryDirectory() as tmp,
        pytest.MonkeyPatch.context() as mp,
        serve_moto(Path(tmp)) as url,
    ):
        mp.setattr(progress.RichReporter, "phase_done", record)
        with_vm_kubeadm(mp)
        (Path(tmp) / "env").mkdir()
        aws = reset_moto(url, isolated_environment(Path(tmp) / "env"))
        ec2: Any = aws.client("ec2")
        with (
            NodeBed(Path(tmp) / "bed") as bed,
            PodServices(bed, SPARK_LAYER / "maven") as pods,
            MotoMachines(bed, ec2, CLUSTER, on_boot=pods.route_metadata) as machines,
        ):
            environ = {
                **aws.env.environ,
                **pods.environ(),
                "SPARKUBE_SSH_BOOT_TIMEOUT": "180",
                "SPARKUBE_SKIP_ADDONS": "kube-opex-analytics",
            }
            env = Environment(environ=environ, cwd=aws.env.cwd, interactive=False)
            shutil.copy(
                SPARK_LAYER / "layer" / SPARK_IMAGE.examples_jar.lstrip("/"), env.cwd / "pi.jar"
            )
            t0 = time.monotonic()
            _, err = sparkube(
                env, "up", "--cluster", CLUSTER, "--workers", "2",
                "--allow-cidr", "203.0.113.7/32", "--yes", "--ttl", "2h",
                "--subnet-id", default_subnet(ec2), *up_flags(),
            )  # fmt: skip
            up_s = time.monotonic() - t0
            print(err, file=sys.stderr)
            if machines.errors:
                raise SystemExit(f"the bed: {machines.errors[-1]}")
            ready_s = ends["kubernetes"] - t0
            items = kubectl_json(bed, "get nodes")["items"]
            ready = [
                n
                for n in items
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in n["status"]["conditions"]
                )
            ]
            if len(ready) != len(NAMES):
                raise SystemExit(f"{len(ready)}/{len(NAMES)} nodes Ready after up")
            runtime = sorted({n["status"]["nodeInfo"]["containerRuntimeVersion"] for n in items})
            kubelet = sorted({n["status"]["nodeInfo"]["kubeletVersion"] for n in items})

            prepull_s = {}
            for name in NAMES[1:]:
                prepull_s[name] = bed.prepull_seconds(name)
            prepulled_after_s = time.monotonic() - t0

            with_prepull = first_job(bed, env)
            usage = {name: bed.usage(name) for name in NAMES}
            remove_spark_image(bed)
            without_prepull = first_job(bed, env)

            t_down = time.monotonic()
            sparkube(env, "down", "--cluster", CLUSTER, "--yes")
            machines.wait(lambda m: not bed.nodes, timeout=120, what="machines removed")
            down_s = time.monotonic() - t_down

    mib = 1 << 20
    line = {
        "ready_s": round(ready_s, 1),
        "up_s": round(up_s, 1),
        "phases_s": phases,
        "runtime": runtime[0] if len(runtime) == 1 else runtime,
        "kubelet": kubelet[0] if len(kubelet) == 1 else kubelet,
        "prepull_s": prepull_s,
        "prepulled_after_s": round(prepulled_after_s, 1),
        "first_job_s": {
            "with_prepull": with_prepull["running_s"],
            "without_prepull": without_prepull["running_s"],
        },
        "first_job_node": {
            "with_prepull": with_prepull["node"],
            "without_prepull": without_prepull["node"],
        },
        "job_done_s": {
            "with_prepull": with_prepull["done_s"],
            "without_prepull": without_prepull["done_s"],
        },
        "first_job_ratio_without_over_with": round(
            without_prepull["running_s"] / with_prepull["running_s"], 2
        ),
        "rss_mib": {n: u["rss_bytes"] // mib for n, u in usage.items()},
        "cache_mib": {n: u["cache_bytes"] // mib for n, u in usage.items()},
        "disk_mib": {n: u["disk_bytes"] // mib for n, u in usage.items()},
        "down_s": round(down_s, 1),
    }
    print(f"ready (all nodes Ready) {line['ready_s']} s, up {line['up_s']} s, phases {phases}")
    print(f"first job to driver Running: with pre-pull {with_prepull['running_s']} s, "
          f"without {without_prepull['running_s']} s "
          f"(x{line['first_job_ratio_without_over_with']})")  # fmt: skip
    for n in NAMES:
        print(
            f"{n}: {line['rss_mib'][n]} MiB RSS (+{line['cache_mib'][n]} MiB cache), "
            f"{line['disk_mib'][n]} MiB disk"
        )
    print(json.dumps(line))


if __name__ == "__main__":
    main()
