"""The bundled run, timed: every installed backend's eager CPU cells of ./cases in one
``conformance run``, then per backend its cells, their summed time, cells per second, and the
critical path (the backend whose cells the run waited for last).

    .tox/unit/bin/python benchmarks/bundled.py [--backends torch,paddle] [--workers N] [--keep]

Each backend runs under its tox interpreter (``.tox/<name>/bin/python``), as ``make report`` runs
them. A backend's cells run on one worker (two where ``conformance run`` splits them: the cores
outnumber the backends, ``--workers``), all backends side by side, so the run's wall time is about
its slowest backend's: the critical path. A cell's time (``elapsed_ms`` in the results) is its own:
preparing it, the worker's call and classifying the answer; summed per backend it is that
backend's work, which its workers share. A cell's ``worker_ms`` is the worker's own time inside
the call (its tensors built from numpy, the framework's call, the results read back: what a bare
script of that cell does); summed per backend it is that backend's framework work ("work s"), and
the last line, ``bundled ratio``, is the wall time over the largest of them (the goal: 1.3).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOX = ROOT / ".tox"
SUITE_PYTHON = TOX / "unit" / "bin" / "python"
ORDER = ["torch", "mindspore", "paddle", "tensorflow", "jax"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backends", type=lambda s: [b for b in s.split(",") if b],
                    help=f"comma-separated (default: each of {','.join(ORDER)} whose .tox/<name>/bin/python exists)")
    ap.add_argument("--workers", type=int, help="passed to conformance run (workers per backend)")
    ap.add_argument("--keep", action="store_true", help="keep the results folder")
    a = ap.parse_args(argv)
    backends = a.backends or [b for b in ORDER if (TOX / b / "bin" / "python").exists()]
    if not backends or not SUITE_PYTHON.exists():
        ap.error("no backend interpreters under .tox (make report builds them)")
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    from conformance import results
    from overhead import bench_env, compile_suite  # the timed process's environment

    compile_suite()  # untimed

    out = Path(tempfile.mkdtemp(prefix="conformance-bundled-"))
    cmd = [str(SUITE_PYTHON), "-m", "conformance.cli", "run", str(ROOT / "cases"), "--device", "cpu",
           "--out", str(out), "--no-report"]
    for b in backends:
        cmd += ["--backend", f"{b}={TOX / b / 'bin' / 'python'}"]
    if a.workers:
        cmd += ["--workers", str(a.workers)]
    print("run: " + " ".join(cmd[1:]), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, env=bench_env())
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        sys.exit(f"conformance run exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    doc = results.load(out / "results.json")
    cells, ms, work, statuses = Counter(), defaultdict(float), defaultdict(float), defaultdict(Counter)
    for r in doc["results"]:
        cells[r["backend"]] += 1
        ms[r["backend"]] += r.get("elapsed_ms") or 0.0
        work[r["backend"]] += r.get("worker_ms") or 0.0
        statuses[r["backend"]][r["status"]] += 1
    print(f"{'backend':<11} {'cells':>7} {'cell s':>8} {'work s':>8} {'cells/s':>8}  statuses")
    for b in backends:
        s = ms[b] / 1000
        print(f"{b:<11} {cells[b]:>7} {s:>8.1f} {work[b] / 1000:>8.1f} {cells[b] / s if s else 0:>8.1f}  "
              + ", ".join(f"{k} {v}" for k, v in sorted(statuses[b].items())))
    slowest = max(backends, key=lambda b: ms[b])
    print(f"wall: {wall:.1f} s for {sum(cells.values())} cells ({sum(cells.values()) / wall:.1f} cells/s)")
    print(f"critical path: {slowest} ({ms[slowest] / 1000:.1f} s of cell time; the wall is "
          f"{wall / (ms[slowest] / 1000):.2f}x that)")
    dearest = max(backends, key=lambda b: work[b])
    if work[dearest]:
        print(f"bundled ratio: {wall / (work[dearest] / 1000):.2f}   (the wall over the slowest backend's "
              f"framework work: {dearest}, {work[dearest] / 1000:.1f} s in its workers' calls)")
    if a.keep:
        print(f"kept: {out}")
    else:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
