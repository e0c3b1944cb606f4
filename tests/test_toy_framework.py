"""docs/ARCHITECTURE.md's recipe "How to add a framework", proved whole: a toy framework (numpy
standing in for one, ``tests/toy_framework/toy/``) is one folder, found through
``$CONFORMANCE_FRAMEWORKS_PATH`` with nothing edited elsewhere, and runs a clipping, a
derivation and a training API in a real worker subprocess through ``conformance run``, every
cell judged by the oracle of its torch source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conformance import results

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(__file__).resolve().parent / "toy_framework"

CASES = {
    "toy-clip.yaml": """\
id: toy-clip
title: clip_grad_norm_ on the toy
dtypes: [float32, float64]
grads:
  w: {random: normal, shape: [3, 4], seed: 1}
  b: [0.5, -2.0, 1.0]
clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 0.5}}
targets: [toy.clip_grad_norm]
""",
    "toy-grad.yaml": """\
id: toy-grad
title: torch.autograd.grad on the toy
dtypes: [float64]
function:
  inputs: {x: [[1.0, 2.0, 3.0]], y: 19.0}
  weights: {fc.weight: [[2.0, 3.0, 4.0]]}
  ops:
    - {op: linear, args: [x, fc.weight], out: fc}
    - {op: tanh, args: [fc], out: h}
    - {op: mse, args: [fc, y], out: loss}
  outputs: [loss]
call: {api: torch.autograd.grad, args: {outputs: [loss], inputs: [x, fc.weight]}}
targets: [toy.grad]
""",
    "toy-train.yaml": """\
id: toy-train
title: two SGD steps with clipping on the toy
dtypes: [float64]
model:
  layers:
    - {type: linear, in: 4, out: 3}
    - {type: tanh}
    - {type: linear, in: 3, out: 2}
  loss: {type: mse}
  inputs: {random: normal, shape: [4, 4], seed: 5}
  targets: {random: normal, shape: [4, 2], seed: 6}
clip: {api: torch.optim.SGD, args: {lr: 0.1}}
step: {steps: 2, micro_batches: 2, max_norm: 0.5}
targets: [toy.sgd]
""",
}


def _conformance(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def test_a_toy_framework_added_as_one_folder_runs_every_kind(tmp_path):
    for name, text in CASES.items():
        (tmp_path / name).write_text(text)
    env = dict(os.environ, CONFORMANCE_FRAMEWORKS_PATH=str(TOY), PYTHONPATH=str(ROOT))
    listed = _conformance("list", "backends", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "toy" in listed.stdout
    out = tmp_path / "out"
    r = _conformance("run", str(tmp_path), "--backend", "toy", "--device", "cpu", "--out", str(out), "--no-report",
                     env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = results.load(out / "results.json")
    statuses = {rec["id"]: rec["status"] for rec in doc["results"]}
    assert statuses == {
        "toy-clip[toy.clip_grad_norm-float32-cpu]": "match",
        "toy-clip[toy.clip_grad_norm-float64-cpu]": "match",
        "toy-grad[toy.grad-float64-cpu]": "match",
        "toy-train[toy.sgd-float64-cpu]": "match",
    }, [(rec["id"], rec["status"], rec["message"]) for rec in doc["results"]]
    assert doc["backends"]["toy"]["version"] == "0.1"
    # every compared cell says what tolerance judged it (the dtype's default here)
    from conformance.compare import tolerance
    assert {rec["id"]: rec["tolerance"] for rec in doc["results"]} == {
        rec["id"]: dict(zip(("rtol", "atol"), tolerance(rec["dtype"]))) for rec in doc["results"]}
    # its snippet writers and its title reach the results document (and so the report)
    snippets = {api for info in doc["cases"].values() for api in info.get("snippets", {})}
    assert snippets == {"toy.clip_grad_norm", "toy.grad", "toy.sgd"}
    assert doc["registry"]["frameworks"]["toy"] == "Toy"


def test_a_wrong_toy_answer_is_a_mismatch(tmp_path):
    """The toy's cells are judged, not waved through: the same folder with its clip one percent
    off gives a mismatch (a copy of the folder, edited)."""
    import shutil

    toy = tmp_path / "fw"
    shutil.copytree(TOY, toy)
    clip = toy / "toy" / "clipping.py"
    clip.write_text(clip.read_text().replace("args[\"max_norm\"] / (norm + 1e-6)", "args[\"max_norm\"] * 1.01 / (norm + 1e-6)"))
    (tmp_path / "toy-clip.yaml").write_text(CASES["toy-clip.yaml"])
    env = dict(os.environ, CONFORMANCE_FRAMEWORKS_PATH=str(toy), PYTHONPATH=str(ROOT))
    out = tmp_path / "out"
    r = _conformance("run", str(tmp_path / "toy-clip.yaml"), "--backend", "toy", "--device", "cpu", "--out", str(out),
                     "--no-report", env=env, cwd=tmp_path)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    doc = results.load(out / "results.json")
    assert {rec["status"] for rec in doc["results"]} == {"mismatch"}


def test_two_versions_of_one_framework_side_by_side_in_one_run(tmp_path):
    """``--backend toy@0.0=OLD_PYTHON --backend toy``: the labelled backend runs every cell again
    under its own interpreter (here one whose toy is a copy with its clip one percent off, as an
    older release could be); its ids carry the label, its keys are the unlabelled cells', and
    ``conformance diff --between`` pairs the two in the one results file."""
    import shutil

    old = tmp_path / "old-fw"
    shutil.copytree(TOY, old)
    clip = old / "toy" / "clipping.py"
    clip.write_text(clip.read_text().replace("args[\"max_norm\"] / (norm + 1e-6)", "args[\"max_norm\"] * 1.01 / (norm + 1e-6)"))
    python = tmp_path / "old-python"
    python.write_text(f"#!/bin/sh\nCONFORMANCE_FRAMEWORKS_PATH={old} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    (tmp_path / "toy-clip.yaml").write_text(CASES["toy-clip.yaml"])
    env = dict(os.environ, CONFORMANCE_FRAMEWORKS_PATH=str(TOY), PYTHONPATH=str(ROOT))
    out = tmp_path / "out"
    r = _conformance("run", str(tmp_path / "toy-clip.yaml"), "--backend", f"toy@0.0={python}", "--backend", "toy",
                     "--device", "cpu", "--out", str(out), "--no-report", env=env, cwd=tmp_path)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    doc = results.load(out / "results.json")
    got = {rec["id"]: (rec["backend"], rec["status"]) for rec in doc["results"]}
    assert got == {
        "toy-clip[toy.clip_grad_norm-float32-cpu]": ("toy", "match"),
        "toy-clip[toy.clip_grad_norm-float64-cpu]": ("toy", "match"),
        "toy-clip[toy.clip_grad_norm@0.0-float32-cpu]": ("toy@0.0", "mismatch"),
        "toy-clip[toy.clip_grad_norm@0.0-float64-cpu]": ("toy@0.0", "mismatch"),
    }
    keys = {}
    for rec in doc["results"]:
        keys.setdefault(rec["key"], set()).add(rec["backend"])
    assert len(keys) == 2 and all(b == {"toy", "toy@0.0"} for b in keys.values())
    assert set(doc["backends"]) == {"toy", "toy@0.0"}
    # old -> new: two cells now match (no regression); new -> old: both are regressions
    up = _conformance("diff", str(out / "results.json"), "--between", "toy@0.0", "toy", env=env, cwd=tmp_path)
    assert up.returncode == 0, up.stdout + up.stderr
    assert up.stdout.count("status") == 2 and "REGRESSION" not in up.stdout
    down = _conformance("diff", str(out / "results.json"), "--between", "toy", "toy@0.0", env=env, cwd=tmp_path)
    assert down.returncode == 1 and down.stdout.count("REGRESSION") == 2, down.stdout + down.stderr
    none = _conformance("diff", str(out / "results.json"), "--between", "toy@9", "toy", env=env, cwd=tmp_path)
    assert none.returncode == 2 and "no toy@9 cells" in none.stderr


def test_a_backend_label_must_be_a_version_label():
    from conformance import frameworks

    _, unavailable, errors = frameworks.resolve(["torch@ bad=/bin/sh", "nosuch@1"])
    assert any("'\\x20bad'" in e or "' bad'" in e for e in errors), errors
    assert any("no nosuch backend" in e for e in errors), errors
