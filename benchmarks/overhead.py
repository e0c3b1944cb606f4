"""How much slower is the suite than a bare script doing the same framework work, per backend?

    python benchmarks/overhead.py [--cells 2000 | --cells 500,2000,8000] [--backends torch,jax]
                                  [--repeat K] [--keep] [--report] [--profile FILE]
                                  [--print-bare BACKEND] [--print-cases BACKEND]

For every backend whose tox interpreter ``.tox/<name>/bin/python`` exists (or those of
``--backends``), in one run, it times two subprocesses (wall clock, imports included):

1. the suite: ``.tox/unit/bin/python -m conformance.cli run CASES --backend NAME=.tox/NAME/bin/python
   --device cpu --out TMP --no-report`` on a generated case directory of exactly N cells of that
   backend: a mix of injected-gradient cases (``grads:``) and model cases (``model:``), of norm
   clipping and value clipping, whose source APIs are that framework's own (``targets:`` restricts
   each case to its identity target, so every cell is one call of one API of that backend). The
   planner counts the cells before the run and ``results.json`` is checked after it;
2. a bare script run by the backend's interpreter: it imports numpy and the framework and, for
   each of the N cells, builds the same numpy data, sets (injected) or derives (model: forward
   and backward of the same network) the gradients, calls the same clipping API with the same
   arguments and reads the gradients (and the returned norm, where the API returns one) back to
   numpy. No suite code; the framework settings of the suite's worker (one thread for torch and
TensorFlow, MindSpore's synchronous launches), so that the ratio measures the suite, not a
setting. ``--print-bare BACKEND`` prints that script.

Before timing a backend, its bare script runs once on no cells (untimed), and the suite's modules
are byte-compiled and imported once, so that neither side is timed reading files from a cold disk
cache or compiling its modules (``bench_env``: the timed processes run without
``PYTHONDONTWRITEBYTECODE``).

Per backend it prints ``overhead ratio <backend>: X`` (suite s / bare s) and
``per-cell overhead <backend>: X ms`` ((suite s - bare s) / N * 1000); the last line is
``overhead ratio: X``, the worst backend's. The table also gives each side's CPU time (the
process and the processes it waited for: the suite's workers count) and their ratio, which moves
less than wall time on a shared VM but is not the goal's measure. ``--cells 500,2000,8000`` runs every size and prints
each size's row, the per-cell slopes fitted over the sizes (is the cost linear?), and the
summary lines for the largest size. ``--repeat K`` alternates the two sides K times and keeps
the fastest of each. ``--report`` also times ``conformance report`` of each backend's results
(not in the ratio: the bare script writes no report). ``--profile FILE`` runs the suite
subprocess under cProfile (main thread only; FILE.<backend>.<cells>; the ratios are then
inflated).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOX = REPO / ".tox"
SUITE_PYTHON = TOX / "unit" / "bin" / "python"
ORDER = ["torch", "mindspore", "paddle", "tensorflow", "jax"]
DTYPES = ["float64", "float32"]

#: Per backend, its own norm-clipping and value-clipping API, and the argument each swept (the
#: others fixed). Each is also the case's only target (its identity mapping), so each cell is one
#: call of that API in that backend's worker.
APIS = {
    "torch": {"norm": ("torch.nn.utils.clip_grad_norm_", "max_norm", {}),
              "value": ("torch.nn.utils.clip_grad_value_", "clip_value", {})},
    "mindspore": {"norm": ("mindspore.ops.clip_by_global_norm", "clip_norm", {}),
                  "value": ("mindspore.ops.clip_by_value", "clip_value_max", {"clip_value_min": -0.3})},
    "paddle": {"norm": ("paddle.nn.ClipGradByGlobalNorm", "clip_norm", {}),
               "value": ("paddle.nn.utils.clip_grad_value_", "clip_value", {})},
    "tensorflow": {"norm": ("tf.clip_by_global_norm", "clip_norm", {}),
                   "value": ("tf.clip_by_value", "clip_value_max", {"clip_value_min": -0.3})},
    "jax": {"norm": ("optax.clip_by_global_norm", "max_norm", {}),
            "value": ("optax.clip", "max_delta", {})},
}

#: Injected gradients (generator specs as in a case file): two structures.
GRADS_A = {
    "weight": {"random": "normal", "shape": [8, 8], "seed": 1},
    "bias": {"random": "normal", "shape": [8], "seed": 2},
}
GRADS_B = {
    "w1": {"random": "normal", "shape": [16, 4], "seed": 3},
    "b1": {"random": "normal", "shape": [16], "seed": 4, "std": 0.5},
    "w2": {"random": "normal", "shape": [3, 16], "seed": 5, "std": 2.0},
}
#: The model cases' network: Linear(6,8)-Tanh-Linear(8,3), MSE (mean) over a batch of 4; every
#: weight given, so the bare scripts build the same network from the same numpy data. MSE rather
#: than cross-entropy: MindSpore has no float64 CrossEntropyLoss on CPU (an `unsupported` cell).
MODEL = {
    "layers": [
        {"type": "linear", "in": 6, "out": 8,
         "weight": {"random": "normal", "shape": [8, 6], "seed": 51, "std": 0.5},
         "bias": {"random": "normal", "shape": [8], "seed": 53, "std": 0.1}},
        {"type": "tanh"},
        {"type": "linear", "in": 8, "out": 3,
         "weight": {"random": "normal", "shape": [3, 8], "seed": 55, "std": 0.5},
         "bias": {"random": "normal", "shape": [3], "seed": 57, "std": 0.1}},
    ],
    "loss": {"type": "mse", "reduction": "mean"},
    "inputs": {"random": "normal", "shape": [4, 6], "seed": 52},
    "targets": {"random": "uniform", "shape": [4, 3], "seed": 54},
}

#: The mix: (name, gradients, which API, share of N, lowest and highest swept threshold). The
#: bundled suite's CPU clipping cells are ~94 % injected norm clipping, ~3 % value clipping and
#: ~3 % model cases; value and model cells get a larger share here so that each path is measured
#: by more than a handful of cells. Thresholds run from below to above the gradients' norm (or
#: largest element), so some cells clip and others do not.
MIX = [
    ("inj-a-norm", GRADS_A, "norm", 0.35, 0.1, 16.0),
    ("inj-b-norm", GRADS_B, "norm", 0.35, 0.1, 16.0),
    ("inj-a-value", GRADS_A, "value", 0.10, 0.05, 3.0),
    ("inj-b-value", GRADS_B, "value", 0.10, 0.05, 3.0),
    ("model-norm", None, "norm", 0.05, 0.01, 2.0),
    ("model-value", None, "value", 0.05, 0.005, 0.5),
]


def mix_counts(n: int) -> list[int]:
    """Cells per MIX entry, summing to exactly ``n`` (the remainder goes to the largest shares)."""
    counts = [int(n * share) for _, _, _, share, _, _ in MIX]
    order = sorted(range(len(MIX)), key=lambda i: (-(n * MIX[i][3] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def thresholds(count: int, lo: float, hi: float) -> list[float]:
    """``count`` distinct values spread over [lo, hi]."""
    if count == 1:
        return [lo]
    return [round(lo + (hi - lo) * i / (count - 1), 7) for i in range(count)]


def case_plan(backend: str, n: int) -> list[dict]:
    """The cases of ``n`` cells: per MIX entry, a sweep of its threshold x DTYPES, plus one
    float32 case for an odd count."""
    cases = []
    for (name, grads, which, _, lo, hi), count in zip(MIX, mix_counts(n)):
        api, key, fixed = APIS[backend][which]
        per, rest = divmod(count, len(DTYPES))
        values = thresholds(per + rest, lo, hi)
        parts = [(f"{name}", values[:per], DTYPES)] if per else []
        if rest:
            parts.append((f"{name}-rest", values[per:], ["float32"]))
        for case_id, vals, dtypes in parts:
            cases.append({"id": f"bench-{backend}-{case_id}", "grads": grads, "api": api, "which": which,
                          "key": key, "fixed": fixed, "values": vals, "dtypes": dtypes})
    return cases


def case_text(c: dict) -> str:
    body = ({"grads": c["grads"]} if c["grads"] is not None else {"model": MODEL})
    args = dict(c["fixed"], **{c["key"]: c["values"][0]})
    doc = {"id": c["id"], "title": f"overhead benchmark, {len(c['values']) * len(c['dtypes'])} cells",
           "tags": ["benchmark"], "devices": ["cpu"], **body,
           "clip": {"api": c["api"], "args": args}, "targets": [c["api"]],
           "sweep": {f"clip.args.{c['key']}": c["values"], "dtypes": c["dtypes"]}}
    # JSON is YAML: one line per top-level field
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in doc.items())


def write_cases(directory: Path, backend: str, n: int) -> list[dict]:
    """Write the case files; return the cells the bare script runs, in the cases' order."""
    directory.mkdir(parents=True, exist_ok=True)
    cells = []
    for c in case_plan(backend, n):
        (directory / f"{c['id']}.yaml").write_text(case_text(c), encoding="utf-8")
        for v in c["values"]:
            for d in c["dtypes"]:
                cells.append({"grads": c["grads"], "model": MODEL if c["grads"] is None else None,
                              "which": c["which"], "dtype": d, "args": dict(c["fixed"], **{c["key"]: v})})
    return cells


def planned(directory: Path, backend: str) -> Counter:
    """(backend, device, api) -> cells, as the suite's planner expands the case directory."""
    from conformance import registry
    from conformance.plan import plan
    from conformance.spec import load

    loaded = load.load_paths([str(directory)])
    p = plan(loaded.cases, registry.load(), backends={backend}, device="cpu")
    problems = loaded.errors + p.errors
    if problems:
        sys.exit("the generated cases do not load:\n" + "\n".join(map(str, problems[:10])))
    return Counter((c.backend, c.device, c.api) for c in p.cells)


# --- the bare scripts ---------------------------------------------------------------------------

PRELUDE = '''\
import json, sys
import numpy as np


def make(spec):
    """The numpy array of a generator spec: {random: normal|uniform, shape, seed, ...}."""
    rng = np.random.default_rng(spec["seed"])
    if spec["random"] == "normal":
        return rng.normal(spec.get("mean", 0.0), spec.get("std", 1.0), size=tuple(spec["shape"]))
    return rng.uniform(spec.get("low", -1.0), spec.get("high", 1.0), size=tuple(spec["shape"]))


CELLS = json.load(open(sys.argv[1]))
'''

BARE = {}

BARE["torch"] = PRELUDE + '''\
import torch

torch.set_num_threads(1)  # as the suite's torch worker (its verdicts must not depend on the cores)
DT = {"float64": torch.float64, "float32": torch.float32}


def network(model, dt):
    a, b = model["layers"][0], model["layers"][2]
    net = torch.nn.Sequential(torch.nn.Linear(a["in"], a["out"]), torch.nn.Tanh(),
                              torch.nn.Linear(b["in"], b["out"])).to(dt)
    with torch.no_grad():
        for layer, spec in ((net[0], a), (net[2], b)):
            layer.weight.copy_(torch.from_numpy(make(spec["weight"])))
            layer.bias.copy_(torch.from_numpy(make(spec["bias"])))
    return net


done = 0
for cell in CELLS:
    dt = DT[cell["dtype"]]
    if cell["model"] is None:  # injected: set p.grad
        params = []
        for spec in cell["grads"].values():
            p = torch.zeros(spec["shape"], dtype=dt, requires_grad=True)
            p.grad = torch.from_numpy(make(spec)).to(dt)
            params.append(p)
    else:  # model: forward and backward
        m = cell["model"]
        net = network(m, dt)
        x = torch.from_numpy(make(m["inputs"])).to(dt)
        y = torch.from_numpy(make(m["targets"])).to(dt)
        torch.nn.functional.mse_loss(net(x), y).backward()
        params = list(net.parameters())
    if cell["which"] == "norm":
        norm = torch.nn.utils.clip_grad_norm_(params, **cell["args"])
        float(norm)
    else:
        torch.nn.utils.clip_grad_value_(params, **cell["args"])
    out = [p.grad.detach().numpy() for p in params]
    done += 1
print(done)
'''

BARE["mindspore"] = PRELUDE + '''\
import mindspore as ms
from mindspore import nn, ops

ms.set_device("CPU")
# as the suite's MindSpore worker: synchronous kernel launches (on 2 busy cores, MindSpore's
# default asynchronous launch made ops.clip_by_global_norm ~4x slower: 40 ms vs 11 ms a call)
ms.runtime.launch_blocking()
DT = {"float64": ms.float64, "float32": ms.float32}


def network(model, dt):
    a, b = model["layers"][0], model["layers"][2]
    net = nn.SequentialCell([nn.Dense(a["in"], a["out"], dtype=dt), nn.Tanh(),
                             nn.Dense(b["in"], b["out"], dtype=dt)])
    for layer, spec in ((net[0], a), (net[2], b)):
        layer.weight.set_data(ms.Tensor(make(spec["weight"]), dt))
        layer.bias.set_data(ms.Tensor(make(spec["bias"]), dt))
    return net


done = 0
for cell in CELLS:
    dt = DT[cell["dtype"]]
    if cell["model"] is None:  # injected: the gradients are a tuple of tensors
        grads = tuple(ms.Tensor(make(spec), dt) for spec in cell["grads"].values())
    else:  # model: mindspore.grad of the loss with respect to the network's weights
        m = cell["model"]
        net = network(m, dt)
        loss = nn.MSELoss()
        x, y = ms.Tensor(make(m["inputs"]), dt), ms.Tensor(make(m["targets"]), dt)
        grads = ms.grad(lambda x, y: loss(net(x), y), grad_position=None,
                        weights=net.trainable_params())(x, y)
    if cell["which"] == "norm":
        out = ops.clip_by_global_norm(grads, **cell["args"])
    else:
        out = ops.clip_by_value(grads, **cell["args"])
    out = [t.asnumpy() for t in out]
    done += 1
print(done)
'''

BARE["paddle"] = PRELUDE + '''\
import paddle

paddle.set_device("cpu")


def network(model, dt):
    a, b = model["layers"][0], model["layers"][2]
    net = paddle.nn.Sequential(paddle.nn.Linear(a["in"], a["out"]), paddle.nn.Tanh(),
                               paddle.nn.Linear(b["in"], b["out"]))
    if dt != "float32":
        net.to(dtype=dt)
    for layer, spec in ((net[0], a), (net[2], b)):
        layer.weight.set_value(paddle.to_tensor(make(spec["weight"]).T, dtype=dt))  # [in, out]
        layer.bias.set_value(paddle.to_tensor(make(spec["bias"]), dtype=dt))
    return net


done = 0
for cell in CELLS:
    dt = cell["dtype"]
    if cell["model"] is None:  # injected: backward of sum(p * g) gives p.grad = g
        params = []
        for spec in cell["grads"].values():
            p = paddle.zeros(spec["shape"], dtype=dt)
            p.stop_gradient = False
            (p * paddle.to_tensor(make(spec), dtype=dt)).sum().backward()
            params.append(p)
    else:  # model: forward and backward
        m = cell["model"]
        net = network(m, dt)
        x = paddle.to_tensor(make(m["inputs"]), dtype=dt)
        y = paddle.to_tensor(make(m["targets"]), dtype=dt)
        paddle.nn.functional.mse_loss(net(x), y).backward()
        params = list(net.parameters())
    if cell["which"] == "norm":  # as an optimizer calls it: on (param, grad) pairs
        clip = paddle.nn.ClipGradByGlobalNorm(**cell["args"])
        out = [g.numpy() for _, g in clip([(p, p.grad) for p in params])]
    else:
        paddle.nn.utils.clip_grad_value_(params, **cell["args"])
        out = [p.grad.numpy() for p in params]
    done += 1
print(done)
'''

BARE["tensorflow"] = PRELUDE + '''\
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)  # as the suite's TensorFlow worker
tf.config.threading.set_inter_op_parallelism_threads(1)
DT = {"float64": tf.float64, "float32": tf.float32}


def forward(model, p, x):
    """Linear-Tanh-Linear in torch layout: y = x @ W.T + b."""
    h = tf.math.tanh(tf.linalg.matmul(x, p[0], transpose_b=True) + p[1])
    return tf.linalg.matmul(h, p[2], transpose_b=True) + p[3]


done = 0
for cell in CELLS:
    dt = DT[cell["dtype"]]
    if cell["model"] is None:  # injected: the gradients are a list of tensors
        grads = [tf.constant(make(spec), dtype=dt) for spec in cell["grads"].values()]
    else:  # model: tf.GradientTape over the network's variables
        m = cell["model"]
        a, b = m["layers"][0], m["layers"][2]
        p = [tf.Variable(make(s), dtype=dt) for s in (a["weight"], a["bias"], b["weight"], b["bias"])]
        x = tf.constant(make(m["inputs"]), dtype=dt)
        y = tf.constant(make(m["targets"]), dtype=dt)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.math.square(forward(m, p, x) - y))
        grads = tape.gradient(loss, p)
    if cell["which"] == "norm":
        out, norm = tf.clip_by_global_norm(grads, **cell["args"])
        float(norm.numpy())
    else:
        out = [tf.clip_by_value(g, **cell["args"]) for g in grads]
    out = [t.numpy() for t in out]
    done += 1
print(done)
'''

BARE["jax"] = PRELUDE + '''\
import jax
jax.config.update("jax_enable_x64", True)  # float64 cells
import jax.numpy as jnp
import optax

DT = {"float64": jnp.float64, "float32": jnp.float32}


def loss(p, x, y):
    """Linear-Tanh-Linear in torch layout, MSE (mean)."""
    h = jnp.tanh(x @ p["0.weight"].T + p["0.bias"])
    return jnp.mean((h @ p["2.weight"].T + p["2.bias"] - y) ** 2)


done = 0
for cell in CELLS:
    dt = DT[cell["dtype"]]
    if cell["model"] is None:  # injected: the gradients are a dict pytree
        grads = {k: jnp.asarray(make(spec), dtype=dt) for k, spec in cell["grads"].items()}
    else:  # model: jax.grad of the loss with respect to the params dict
        m = cell["model"]
        a, b = m["layers"][0], m["layers"][2]
        p = {k: jnp.asarray(make(s), dtype=dt) for k, s in
             (("0.weight", a["weight"]), ("0.bias", a["bias"]), ("2.weight", b["weight"]), ("2.bias", b["bias"]))}
        x = jnp.asarray(make(m["inputs"]), dtype=dt)
        y = jnp.asarray(make(m["targets"]), dtype=dt)
        grads = jax.grad(loss)(p, x, y)
    tx = optax.clip_by_global_norm(**cell["args"]) if cell["which"] == "norm" else optax.clip(**cell["args"])
    updates, _ = tx.update(grads, tx.init(grads))
    out = {k: np.asarray(v) for k, v in updates.items()}
    done += 1
print(done)
'''


# --- timing -------------------------------------------------------------------------------------

def python_of(backend: str) -> Path:
    return TOX / backend / "bin" / "python"


def bench_env(**extra) -> dict:
    """The environment of every timed process: this one without ``PYTHONDONTWRITEBYTECODE``.
    Some machines set it (this VM does); then every process of the suite compiled the suite's
    modules again, and pytest rewrote their asserts again (0.5 s of CPU per pytest process
    here), while the bare scripts read the frameworks' bytecode that pip wrote at install. A
    user's Python writes the suite's once, and tox does not pass the variable on (CI writes
    them once): that is the state measured."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env


def compile_suite() -> None:
    """Untimed: the suite's bytecode written, as a first run writes it (``bench_env``)."""
    subprocess.run([str(SUITE_PYTHON), "-m", "compileall", "-q", str(REPO / "conformance")], check=True,
                   stdout=subprocess.DEVNULL)


def timed(cmd: list, **kwargs) -> tuple:
    """(the finished process, wall s, CPU s): the command run to its end; its CPU time is what
    the process and every process it waited for used (``RUSAGE_CHILDREN``: the suite's workers
    count, as they are its children), a figure that moves less than wall time on a shared VM."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_suite(backend: str, cases: Path, out: Path, profile: str | None) -> tuple:
    cmd = [str(SUITE_PYTHON)]
    if profile:
        cmd += ["-m", "cProfile", "-o", profile]
    cmd += ["-m", "conformance.cli", "run", str(cases), "--backend", f"{backend}={python_of(backend)}",
            "--device", "cpu", "--out", str(out), "--no-report"]
    proc, wall, cpu = timed(cmd, cwd=str(out.parent), env=bench_env(PYTHONUNBUFFERED="1"))
    if proc.returncode not in (0, 1):  # 1: some cell is mismatch/error; still counted below
        sys.exit(f"{backend}: suite exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, cpu


def run_bare(backend: str, script: Path, cells_file: Path, n: int) -> tuple:
    proc, wall, cpu = timed([str(python_of(backend)), str(script), str(cells_file)], cwd=str(script.parent),
                            env=bench_env())
    if proc.returncode != 0 or proc.stdout.strip().splitlines()[-1:] != [str(n)]:
        sys.exit(f"{backend}: bare script failed ({proc.returncode}):\n"
                 f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return wall, cpu


def run_report(out: Path) -> float:
    cmd = [str(SUITE_PYTHON), "-m", "conformance.cli", "report", str(out / "results.json"),
           "--out", str(out / "html")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=str(out.parent), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"report exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return wall


def warm_up(backend: str, tmp: Path) -> None:
    """Untimed: the bare script on no cells (imports numpy and the framework), so that neither
    side is timed reading the framework's files from a cold disk cache."""
    base = tmp / f"{backend}-warm-up"
    base.mkdir(parents=True, exist_ok=True)
    (base / "cells.json").write_text("[]", encoding="utf-8")
    (base / "bare.py").write_text(BARE[backend], encoding="utf-8")
    run_bare(backend, base / "bare.py", base / "cells.json", 0)


def measure(backend: str, n: int, tmp: Path, a) -> dict:
    """Time the suite and the bare script on ``n`` cells of ``backend``; check the cells."""
    base = tmp / f"{backend}-{n}"
    cases, out = base / "cases", base / "out"
    cells = write_cases(cases, backend, n)
    apis = {APIS[backend][w][0] for w in ("norm", "value")}
    expected = Counter({(backend, "cpu", api): 0 for api in apis})
    got = planned(cases, backend)
    if sum(got.values()) != n or set(got) - set(expected):
        sys.exit(f"{backend}: the planner expands the cases to {dict(got)}, expected {n} cells of {sorted(apis)}")
    cells_file, script = base / "cells.json", base / f"bare_{backend}.py"
    cells_file.write_text(json.dumps(cells), encoding="utf-8")
    script.write_text(BARE[backend], encoding="utf-8")
    profile = f"{Path(a.profile).resolve()}.{backend}.{n}" if a.profile else None
    bares, suites, bare_cpus, suite_cpus = [], [], [], []
    for _ in range(a.repeat):
        wall, cpu = run_bare(backend, script, cells_file, n)
        bares.append(wall)
        bare_cpus.append(cpu)
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu = run_suite(backend, cases, out, profile)
        suites.append(wall)
        suite_cpus.append(cpu)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]
    others = [r["id"] for r in results if r["backend"] != backend or r["device"] != "cpu" or r["api"] not in apis]
    if len(results) != n or others:
        sys.exit(f"{backend}: expected {n} {backend}/cpu cells, results.json has {len(results)}"
                 f" ({len(others)} of another backend/device/api, e.g. {others[:3]})")
    row = {"backend": backend, "cells": n, "suite": min(suites), "bare": min(bares),
           "suites": suites, "bares": bares, "suite_cpu": min(suite_cpus), "bare_cpu": min(bare_cpus),
           "statuses": Counter(r["status"] for r in results),
           "mix": Counter(("model" if c["model"] else "injected", c["which"]) for c in cells)}
    if a.report:
        row["render"] = run_report(out)
    return row


def slope(rows: list[dict], key: str) -> float:
    """Least-squares seconds per cell of ``key`` over the sizes."""
    xs, ys = [r["cells"] for r in rows], [r[key] for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of cell counts: {text!r}")
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("cell counts must be at least 1")
    return sizes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=parse_sizes, default=[2000],
                    help="cells per backend (default 2000), or several sizes: 500,2000,8000")
    ap.add_argument("--backends", type=lambda s: [b for b in s.split(",") if b],
                    help=f"comma-separated (default: each of {','.join(ORDER)} whose .tox/<name>/bin/python exists)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="time each side this many times (alternating) and keep the fastest")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--report", action="store_true", help="also time `conformance report` (not in the ratio)")
    ap.add_argument("--profile", metavar="FILE", help="run the suite under cProfile, stats to FILE.<backend>.<cells>")
    ap.add_argument("--print-bare", metavar="BACKEND", choices=ORDER, help="print that backend's bare script and exit")
    ap.add_argument("--print-cases", metavar="BACKEND", choices=ORDER,
                    help="print the case files of --cells (the first size) for that backend and exit")
    a = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # the progress lines (stderr) come first
    if a.print_bare:
        print(BARE[a.print_bare], end="")
        return 0
    if a.print_cases:
        for c in case_plan(a.print_cases, a.cells[0]):
            print(f"# {c['id']}.yaml\n{case_text(c)}")
        return 0
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    backends = a.backends or [b for b in ORDER if python_of(b).exists()]
    unknown = [b for b in backends if b not in APIS]
    if unknown:
        ap.error(f"unknown backend(s) {unknown}; known: {ORDER}")
    missing = [b for b in backends if not python_of(b).exists()]
    if missing or not SUITE_PYTHON.exists():
        ap.error(f"missing interpreter(s): {[str(python_of(b)) for b in missing] or [str(SUITE_PYTHON)]}"
                 " (make report builds them)")
    sizes = sorted(set(a.cells))

    tmp = Path(tempfile.mkdtemp(prefix="conformance-overhead-"))
    rows = {b: [] for b in backends}
    compile_suite()
    subprocess.run([str(SUITE_PYTHON), "-c", "import conformance.cli, conformance.runner, conformance.worker"],
                   check=True, env=bench_env())  # untimed, as warm_up
    for b in backends:
        warm_up(b, tmp)
        for n in sizes:
            rows[b].append(measure(b, n, tmp, a))
            r = rows[b][-1]
            print(f"... {b} {n} cells: suite {r['suite']:.2f} s, bare {r['bare']:.2f} s", file=sys.stderr, flush=True)
    if a.keep:
        print(f"kept: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"suite: {SUITE_PYTHON} -m conformance.cli run ... --backend NAME=.tox/NAME/bin/python --device cpu --no-report")
    first = rows[backends[0]][-1]
    print("mix per size: " + ", ".join(f"{g} {w} {c}" for (g, w), c in sorted(first["mix"].items()))
          + f" (of {first['cells']}); dtypes {'/'.join(DTYPES)}")
    print(f"{'backend':<11} {'cells':>6} {'suite s':>8} {'bare s':>8} {'ratio':>6} {'ms/cell':>8}"
          f" {'CPU suite/bare s':>17} {'CPU ratio':>9}  statuses")
    for b in backends:
        for r in rows[b]:
            n = r["cells"]
            print(f"{b:<11} {n:>6} {r['suite']:>8.2f} {r['bare']:>8.2f} {r['suite'] / r['bare']:>6.2f}"
                  f" {(r['suite'] - r['bare']) / n * 1000:>8.2f}"
                  f" {r['suite_cpu']:>8.2f}/{r['bare_cpu']:<8.2f} {r['suite_cpu'] / r['bare_cpu']:>9.2f}  "
                  + ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items())))
            if a.repeat > 1:
                print(f"{'':<11} runs suite/bare s: "
                      + ", ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(r["suites"], r["bares"])))
            if "render" in r:
                print(f"{'':<11} report render (conformance report, not in the ratio): {r['render']:.2f} s")
    if len(sizes) > 1:
        print("per-cell slopes over the sizes (least squares; linear cost: the rows' ms/cell approach the"
              " overhead slope):")
        for b in backends:
            s, bb = slope(rows[b], "suite") * 1000, slope(rows[b], "bare") * 1000
            print(f"  {b}: suite {s:.3f} ms/cell, bare {bb:.3f} ms/cell, overhead {s - bb:.3f} ms/cell")
        print(f"summary lines: the largest size, {sizes[-1]} cells")
    worst = None
    for b in backends:
        r = rows[b][-1]
        ratio = r["suite"] / r["bare"]
        print(f"overhead ratio {b}: {ratio:.2f}")
        print(f"per-cell overhead {b}: {(r['suite'] - r['bare']) / r['cells'] * 1000:.2f} ms")
        if worst is None or ratio > worst[1]:
            worst = (b, ratio)
    print(f"overhead ratio: {worst[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
