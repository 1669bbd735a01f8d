"""Start-up time of the ``sparkube`` command: ``--version``, ``--help``, ``wordcount --help``.

Each command runs in a fresh ``python -m sparkube`` subprocess (what a user's shell
does), several times in turn; the best and the median wall time are printed next to
the same figures for ``python -c pass`` (the interpreter alone, measured in the same
run, so a busy machine shifts both) and their ratio. The import cost is the difference.
Target (issue 11): ``--version`` and ``--help`` well under 0.3 s.

    python bench/startup.py [ROUNDS]        # default 9
    python -X importtime -m sparkube --version 2>&1 | sort -t'|' -k2 -n | tail   # where it goes
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES: dict[str, list[str]] = {
    "python -c pass (baseline)": ["-c", "pass"],
    "sparkube --version": ["-m", "sparkube", "--version"],
    "sparkube --help": ["-m", "sparkube", "--help"],
    "sparkube wordcount --help": ["-m", "sparkube", "wordcount", "--help"],
    "sparkube plan --help": ["-m", "sparkube", "plan", "--help"],
}


def _once(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    env = {**os.environ, "COLUMNS": "100", "PYTHONDONTWRITEBYTECODE": "1"}
    for args in CASES.values():  # warm the page cache and the bytecode cache
        _once(args, env)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(rounds):  # interleaved, so load spikes hit every case alike
        for name, args in CASES.items():
            times[name].append(_once(args, env))
    base_best = min(times["python -c pass (baseline)"])
    base_median = statistics.median(times["python -c pass (baseline)"])
    print(f"{rounds} rounds, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'case':<28} {'best':>8} {'median':>8} {'x best':>8} {'x median':>9}")
    for name, values in times.items():
        best, median = min(values), statistics.median(values)
        print(
            f"{name:<28} {best:>7.3f}s {median:>7.3f}s {best / base_best:>7.1f}x "
            f"{median / base_median:>8.1f}x"
        )


if __name__ == "__main__":
    main()
