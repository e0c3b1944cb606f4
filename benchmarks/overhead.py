"""How much slower is the suite than a bare script doing the same torch work?

    python benchmarks/overhead.py [--cells 500] [--python PYTHON] [--repeat K] [--keep]
                                  [--profile FILE]

In one run it times two subprocesses of the same interpreter (imports included, wall clock):

1. the suite: ``PYTHON -m conformance.cli run CASES --backend torch --device cpu --out TMP
   --no-report`` on a
   generated case directory whose cells total N torch/cpu cells of injected-gradient
   ``torch.nn.utils.clip_grad_norm_`` (a ``sweep:`` over ``clip.args.max_norm`` x dtypes); the
   results.json is read back to check that exactly N cells ran;
2. a bare script: import torch and numpy, and for each of the N cells build the same gradients
   from numpy, set ``p.grad``, call ``clip_grad_norm_`` with the same arguments and read the
   gradients back to numpy.

The HTML report is rendered afterwards, by ``conformance report``, and timed on its own line: the
bare script writes no report, so it is not part of the ratio. The last line printed is
``overhead ratio: X.XX`` (suite seconds / bare seconds); the goal is at
most 1.5 for 500 cells. ``--repeat K`` times each side K times (alternating) and keeps the
fastest of each, which steadies the numbers on a noisy machine. ``--profile FILE`` runs the
suite subprocess under cProfile (main thread only; its time is then inflated and the ratio
printed is for that profiled run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DTYPES = ["float64", "float32", "float16", "bfloat16"]
API = "torch.nn.utils.clip_grad_norm_"
#: The injected gradients of every cell (generator specs as in a case file).
GRADS = {
    "weight": {"random": "normal", "shape": [8, 8], "seed": 1},
    "bias": {"random": "normal", "shape": [8], "seed": 2},
}


def max_norms(count: int, start: int = 0) -> list[float]:
    """Distinct max_norm values, some below and some above the total norm (~8) of GRADS."""
    return [round(0.05 * (start + i + 1), 4) for i in range(count)]


def cell_plan(n: int) -> list[tuple[str, list[float], list[str]]]:
    """(case id, max_norm values, dtypes) per case so that the cells total exactly ``n``."""
    per, rest = divmod(n, len(DTYPES))
    cases = []
    if per:
        cases.append(("bench-clip-grad-norm", max_norms(per), DTYPES))
    if rest:
        cases.append(("bench-clip-grad-norm-rest", max_norms(rest, per), ["float32"]))
    return cases


def write_cases(directory: Path, n: int) -> list[tuple[float, str]]:
    """Write the case files; return the (max_norm, dtype) of each cell, in no particular order."""
    directory.mkdir(parents=True, exist_ok=True)
    cells = []
    grads = "\n".join(f"  {k}: {json.dumps(v)}" for k, v in GRADS.items())
    for case_id, norms, dtypes in cell_plan(n):
        text = (f"id: {case_id}\n"
                f"title: overhead benchmark, {len(norms) * len(dtypes)} cells\n"
                f"tags: [benchmark]\n"
                f"devices: [cpu]\n"
                f"grads:\n{grads}\n"
                f"clip:\n  api: {API}\n  args: {{max_norm: 1.0}}\n"
                f"targets: [{API}]\n"
                f"sweep:\n  clip.args.max_norm: {json.dumps(norms)}\n"
                f"  dtypes: {json.dumps(dtypes)}\n")
        (directory / f"{case_id}.yaml").write_text(text, encoding="utf-8")
        cells += [(m, d) for m in norms for d in dtypes]
    return cells


BARE = '''\
import json, sys
import numpy as np
import torch

GRADS = json.loads(sys.argv[1])
CELLS = json.loads(sys.argv[2])
DT = {"float64": torch.float64, "float32": torch.float32,
      "float16": torch.float16, "bfloat16": torch.bfloat16}


def make(spec):
    rng = np.random.default_rng(spec["seed"])
    return rng.normal(0.0, 1.0, size=tuple(spec["shape"]))


done = 0
for max_norm, dtype in CELLS:
    dt = DT[dtype]
    params = []
    for name, spec in GRADS.items():
        g = make(spec)
        p = torch.zeros(spec["shape"], dtype=dt, requires_grad=True)
        p.grad = torch.from_numpy(g).to(dtype=dt)
        params.append(p)
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm=max_norm, norm_type=2.0,
                                          error_if_nonfinite=False, foreach=None)
    out = [p.grad.detach().to(torch.float64).numpy() for p in params]
    float(norm)
    done += 1
print(done)
'''


def run_report(python: str, out: Path) -> float:
    """Seconds to render the HTML report of the suite's results (a process of its own)."""
    cmd = [python, "-m", "conformance.cli", "report", str(out / "results.json"), "--out", str(out / "html")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(out.parent), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"report exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return wall


def run_suite(python: str, cases: Path, out: Path, profile: str | None) -> float:
    cmd = [python]
    if profile:
        cmd += ["-m", "cProfile", "-o", profile]
    cmd += ["-m", "conformance.cli", "run", str(cases), "--backend", "torch", "--device", "cpu",
            "--out", str(out), "--no-report"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(out.parent), capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: some cell is mismatch/error; still counted below
        sys.exit(f"suite exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


def run_bare(python: str, script: Path, cells: list) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([python, str(script), json.dumps(GRADS), json.dumps(cells)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or proc.stdout.strip() != str(len(cells)):
        sys.exit(f"bare script failed ({proc.returncode}):\n"
                 f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=500, help="torch/cpu cells to run (default 500)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with the suite and torch (default: this one)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="time each side this many times (alternating) and keep the fastest")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--profile", metavar="FILE", help="run the suite under cProfile, stats to FILE")
    a = ap.parse_args(argv)
    if a.cells < 1 or a.repeat < 1:
        ap.error("--cells and --repeat must be at least 1")

    tmp = Path(tempfile.mkdtemp(prefix="conformance-overhead-"))
    cases, out, script = tmp / "cases", tmp / "out", tmp / "bare.py"
    cells = write_cases(cases, a.cells)
    script.write_text(BARE, encoding="utf-8")
    profile = str(Path(a.profile).resolve()) if a.profile else None

    bares, suites = [], []
    for _ in range(a.repeat):
        bares.append(run_bare(a.python, script, cells))
        shutil.rmtree(out, ignore_errors=True)
        suites.append(run_suite(a.python, cases, out, profile))
    bare, suite = min(bares), min(suites)
    render_s = run_report(a.python, out)

    doc = json.loads((out / "results.json").read_text(encoding="utf-8"))
    results = doc["results"]
    statuses = Counter(r["status"] for r in results)
    others = [r["id"] for r in results
              if (r["backend"], r["device"], r["api"]) != ("torch", "cpu", API)]
    if len(results) != a.cells or others:
        sys.exit(f"expected {a.cells} torch/cpu cells, results.json has {len(results)}"
                 f" ({len(others)} of another backend/device/api)")
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"kept: {tmp}")

    n = a.cells
    print(f"python: {a.python}")
    if a.repeat > 1:
        print("runs (suite/bare s): " + ", ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(suites, bares))
              + "; the fastest of each below")
    print("statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    print(f"{'cells':>6} {'suite s':>9} {'bare s':>9} {'overhead ms/cell':>17}")
    print(f"{n:>6} {suite:>9.2f} {bare:>9.2f} {(suite - bare) / n * 1000:>17.2f}")
    print(f"report render (conformance report, not in the ratio): {render_s:.2f} s")
    print(f"overhead ratio: {suite / bare:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
