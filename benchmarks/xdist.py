"""pytest-xdist, timed: ``pytest CASES --backend B -n N`` for each N (default 0 and 2) in the
backend's tox interpreter, its wall time, the machine's busy CPU time meanwhile (the xdist
workers, the framework workers, the distributed cases' rank processes: run it on a quiet
machine), and the speed-up of each N over the first.

    .tox/unit/bin/python benchmarks/xdist.py [--backend torch] [-n 0,2] [--cases cases] [--repeat K]

Per N it prints ``xdist -n N: W s wall, C s CPU (B cores busy), P passed, S skipped``; then
``xdist speed-up -n N: X`` (the first N's wall over this one's) and ``bound on this machine: Y``
(the cores over the cores the first N already kept busy: what a perfect split of its work could
give at most). The goal of issue 16 is a speed-up of 1.7 at ``-n 2`` on the bundled cases.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOX = ROOT / ".tox"
sys.path.insert(0, str(ROOT / "benchmarks"))

from overhead import bench_env, compile_suite  # noqa: E402 - the timed processes' environment


def _cpu() -> float:
    """Busy CPU seconds of the whole machine so far (``/proc/stat``: every state but idle and
    iowait), so that every process of a run counts, those it does not wait for included (the
    distributed cases' ranks are children of a forkserver that outlives the run's own
    processes); on a quiet machine that is the run's CPU time. Elsewhere: this process's
    waited-for descendants."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def run_once(python: Path, cases: str, backend: str, n: int) -> dict:
    cmd = [str(python), "-m", "pytest", cases, "--backend", backend, "-n", str(n), "-q",
           "-p", "no:cacheprovider", "-o", "addopts="]
    cpu0, t0 = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, env=bench_env())
    wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", tail)}
    return {"n": n, "wall": wall, "cpu": cpu, "counts": counts, "tail": tail, "rc": proc.returncode}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="torch")
    ap.add_argument("-n", dest="ns", default="0,2", type=lambda s: [int(x) for x in s.split(",") if x],
                    help="xdist worker counts, comma-separated (default 0,2); the first is the baseline")
    ap.add_argument("--cases", default="cases", help="case folder (default: the bundled cases)")
    ap.add_argument("--repeat", type=int, default=1, help="run each N this many times, alternating, and keep "
                    "the fastest (default 1)")
    a = ap.parse_args(argv)
    python = TOX / a.backend / "bin" / "python"
    if not python.exists():
        ap.error(f"no {python} (make report builds the tox environments)")
    compile_suite()  # untimed; pytest's assert rewriting writes its own bytecode at the first run
    best: dict = {}
    for _ in range(a.repeat):
        for n in a.ns:
            r = run_once(python, a.cases, a.backend, n)
            print(f"  run -n {n}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU ({r['tail']})", flush=True)
            if n not in best or r["wall"] < best[n]["wall"]:
                best[n] = r
    cores = _cores()
    print(f"pytest {a.cases} --backend {a.backend} on {cores} cores (the fastest of {a.repeat} run(s) each):")
    for n in a.ns:
        r = best[n]
        c = r["counts"]
        print(f"xdist -n {n}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU ({r['cpu'] / r['wall']:.2f} cores busy), "
              f"{c.get('passed', 0)} passed, {c.get('skipped', 0)} skipped, {c.get('failed', 0)} failed")
    base = best[a.ns[0]]
    for n in a.ns[1:]:
        print(f"xdist speed-up -n {n}: {base['wall'] / best[n]['wall']:.2f}")
    print(f"bound on this machine: {cores / (base['cpu'] / base['wall']):.2f}   "
          f"({cores} cores over the {base['cpu'] / base['wall']:.2f} that -n {a.ns[0]} kept busy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
