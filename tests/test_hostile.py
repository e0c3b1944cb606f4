"""Hostile input, broken installs, interrupted and concurrent runs: nothing crashes, nothing lies,
nothing is lost. Hostile files are written at test time; runs use the toy framework
(tests/toy_framework: numpy, no real framework needed) in real worker subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance import registry, results, snippets
from conformance.plan import plan
from conformance.spec.load import load_paths, parse_text
from conformance.spec.limits import Limits

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "toy_framework"
GOOD = """\
id: good
title: t
dtypes: [float32]
devices: [cpu]
grads: {w: [3.0, 4.0]}
clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1.0}}
"""


def _sweep_case(n: int) -> str:
    """A toy case of ``n`` cells (max_norm swept)."""
    values = ", ".join(str(0.1 * (i + 1)) for i in range(n))
    return ("id: many\ntitle: t\ndtypes: [float64]\ndevices: [cpu]\ngrads: {w: [3.0, 4.0], b: [1.0]}\n"
            "clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1.0}}\n"
            f"targets: [toy.clip_grad_norm]\nsweep:\n  clip.args.max_norm: [{values}]\n")


def _env(**extra) -> dict:
    env = dict(os.environ, CONFORMANCE_FRAMEWORKS_PATH=str(TOY), PYTHONPATH=str(ROOT))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _cli(*args, cwd, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env or _env())


def _foreground_signals() -> None:
    """In the child: SIGINT as in a foreground terminal run (a shell starts background jobs, and
    so this test's whole process tree when CI runs it with `nohup ... &`, with SIGINT ignored,
    and Python installs its Ctrl-C handler only where SIGINT is not ignored at start)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args, cwd, env=None):
    """The CLI in the background. Its TMPDIR is a folder of the test's own (removed with it): a
    run killed with SIGKILL cannot remove its temporary folders (the worker's sys.path link, its
    workers' TMPDIRs), which otherwise pile up in /tmp, two per kill."""
    scratch = Path(cwd) / "tmp"
    scratch.mkdir(exist_ok=True)
    env = dict(env or _env(), TMPDIR=str(scratch))
    return subprocess.Popen([sys.executable, "-m", "conformance.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd, env=env,
                            preexec_fn=_foreground_signals)


def _journal_cells(journal: Path) -> int:
    try:
        return sum(1 for line in journal.read_text().splitlines() if '"status"' in line)
    except OSError:
        return 0


def _wait_for_cells(journal: Path, n: int, proc, limit: float = 120) -> None:
    end = time.monotonic() + limit
    while _journal_cells(journal) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "the run wrote no cells"
        time.sleep(0.05)


# --------------------------------------------------------------------------- 1. hostile files

def _alias_bomb() -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "id: bomb\ntitle: t\n" + "\n".join(lines) + "\n" + GOOD.split("\n", 2)[2]


HOSTILE = {
    "bomb.yaml": (_alias_bomb(), "YAML nodes (aliases included; limit nodes=1000000)"),
    "deep.yaml": ("id: deep\ntitle: t\ngrads:\n  w: " + "[" * 5000 + "1" + "]" * 5000 + "\n",
                  "nested more than 64 levels deep"),
    "deep500.yaml": ("id: d\ntitle: t\ngrads:\n  w: " + "[" * 500 + "1" + "]" * 500 + "\n", "nested more than 64"),
    "sweep.yaml": (GOOD.replace("id: good", "id: sweep") + "sweep:\n  clip.args.max_norm: ["
                   + ", ".join(str(i + 1) for i in range(1000)) + "]\n  clip.args.norm_type: ["
                   + ", ".join(str(i + 1) for i in range(1000)) + "]\n", "which takes the file past 50000"),
    "huge.yaml": (GOOD.replace("id: good", "id: huge").replace("{w: [3.0, 4.0]}", "{w: {fill: 1.0, shape: [100000, 100000]}}"),
                  "10000000000 elements (limit tensor_elements"),
    "rank.yaml": (GOOD.replace("id: good", "id: rank").replace("[3.0, 4.0]", "[" * 40 + "1.0" + "]" * 40),
                  "a tensor of 40 dimensions (limit tensor_rank=32)"),
    "empty.yaml": ("# only a comment\n", "no case in this file"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_file_is_one_clear_error_and_the_others_still_load(tmp_path, name):
    text, expected = HOSTILE[name]
    (tmp_path / name).write_text(text)
    (tmp_path / "good.yaml").write_text(GOOD)
    start = time.monotonic()
    res = load_paths([tmp_path])
    p = plan(res.cases, registry.load())
    assert time.monotonic() - start < 10
    assert {c.case.id for c in p.cells} == {"good"}
    bad = [str(e) for e in res.errors + p.errors]
    assert len(bad) == 1 and str(tmp_path / name) in bad[0] and expected in bad[0], bad


def test_unreadable_files_are_errors_and_the_others_still_load(tmp_path):
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "latin.yaml").write_bytes(b"id: caf\xe9\n")
    big = GOOD + "#" * 2000 + "\n"
    (tmp_path / "big.yaml").write_text(big)
    (tmp_path / "good.yaml").write_text(GOOD)
    res = load_paths([tmp_path], Limits(file_bytes=1000))
    assert [sc.case.id for sc in res.cases] == ["good"]
    assert sorted(str(e).replace(str(tmp_path) + "/", "") for e in res.errors) == [
        f"big.yaml:1: {len(big)} bytes (limit file_bytes=1000)",
        "latin.yaml:1: not UTF-8 text (byte 7: b'\\xe9')",
        "zero.yaml:1: not a regular file (a device, a FIFO or a link to one)"]


def test_limits_can_be_raised(tmp_path):
    text = GOOD.replace("[3.0, 4.0]", "{fill: 1.0, shape: [1000]}")
    assert parse_text(text, "f.yaml", Limits(tensor_elements=999)).errors
    assert not parse_text(text, "f.yaml", Limits(tensor_elements=1000)).errors
    with pytest.raises(ValueError, match="NAME one of cells_per_file"):
        Limits().with_overrides(["cells=3"])


def test_cli_and_pytest_survive_hostile_files(tmp_path):
    for name, (text, _) in HOSTILE.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "latin.yaml").write_bytes(b"id: caf\xe9\n")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "good.yaml").write_text(GOOD.replace("devices: [cpu]", "devices: [cpu]\ntargets: [toy.clip_grad_norm]"))
    r = _cli("run", tmp_path, "--backend", "toy", "--out", tmp_path / "out", "--no-report", cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert results.load(tmp_path / "out" / "results.json")["results"][0]["status"] == "match"
    assert r.stderr.count(str(tmp_path)) == len(HOSTILE) + 2
    # pytest: every file the ini globs name is collected (but the link to /dev/zero, which
    # pytest itself passes over), the hostile ones as one failing item each, nothing interrupted
    cases = tmp_path / "cases"
    cases.mkdir()
    for f in tmp_path.glob("*.yaml"):
        os.replace(f, cases / f.name)
    p = subprocess.run([sys.executable, "-m", "pytest", str(cases), "-q", "-p", "no:cacheprovider",
                        "--backend", "toy", "--rootdir", str(tmp_path), "-o", "conformance_cases=cases/*.yaml"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env())
    assert "Interrupted" not in p.stdout, p.stdout[-3000:]
    assert f"{len(HOSTILE) + 1} failed, 1 passed" in p.stdout, p.stdout[-3000:]


# --------------------------------------------------------------------------- 2. what validates runs

@pytest.mark.parametrize("edit,expected", [
    (("max_norm: 1.0", "max_norm: half"), "takes a number for 'max_norm', got 'half'"),
    (("[3.0, 4.0]", "{random: normal, std: .nan, shape: [2]}"), "std must be a finite number"),
    (("[3.0, 4.0]", "{arange: [0, .inf]}"), "arange needs finite start and stop"),
    (("[3.0, 4.0]", "{random: randint, low: 3, high: 1, shape: [2]}"), "randint needs low < high"),
    (("[3.0, 4.0]", "{arange: [0, 5], shape: [2, 2]}"), "gives 5 values, shape [2, 2] holds 4"),
    (("max_norm: 1.0}", "max_norm: 1.0, error_if_nonfinite: 3}"), "takes true or false"),
])
def test_what_cannot_run_does_not_validate(tmp_path, edit, expected):
    (tmp_path / "c.yaml").write_text(GOOD.replace(*edit))
    r = _cli("validate", tmp_path / "c.yaml", cwd=tmp_path)
    assert r.returncode == 2 and expected in r.stderr, r.stderr


# --------------------------------------------------------------------------- 3. broken installs

def test_a_requested_backend_that_cannot_start_is_an_error_that_says_why(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    from conformance import frameworks

    # a framework the CLI's own interpreter cannot import, named with that interpreter
    missing = next((n for n, fw in frameworks.discover().items() if not frameworks.installed_here(n)), None)
    if missing is not None:
        r = _cli("run", tmp_path, "--backend", f"{missing}={sys.executable}", "--out", tmp_path / "o", cwd=tmp_path)
        package = frameworks.discover()[missing].package
        assert r.returncode == 2 and f"--backend {missing}: {sys.executable} cannot import {package}" in r.stderr
    r = _cli("run", tmp_path, "--backend", "paddle=/no/such/python", "--out", tmp_path / "o", cwd=tmp_path)
    assert r.returncode == 2 and "no such interpreter: /no/such/python" in r.stderr
    # a framework that is found but does not import (a broken install): its worker cannot start
    broken = tmp_path / "fw"
    (broken / "toy").mkdir(parents=True)
    for f in (TOY / "toy").rglob("*"):
        if f.is_file():
            target = broken / "toy" / f.relative_to(TOY / "toy")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read_bytes())
    (broken / "toy" / "worker.py").write_text("raise ImportError('the toy install is broken')\n")
    env = _env(CONFORMANCE_FRAMEWORKS_PATH=broken)
    r = _cli("run", tmp_path, "--backend", "toy", "--out", tmp_path / "o", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "backend toy" in r.stderr and "the toy install is broken" in r.stderr, r.stderr
    # found by auto-discovery instead: its cells are skipped and the summary says why
    (tmp_path / "good.yaml").write_text(GOOD.replace("devices: [cpu]", "devices: [cpu]\ntargets: [toy.clip_grad_norm]"))
    r = _cli("run", tmp_path, "--out", tmp_path / "o2", "--no-report", cwd=tmp_path,
             env=dict(env, CONFORMANCE_NO_TOX_ENVS="1"))
    assert "skipped backend toy: toy worker failed to start" in r.stdout, r.stdout + r.stderr


# --------------------------------------------------------------------------- 4. generated code

def test_names_that_would_inject_code_are_refused_and_comments_are_escaped():
    res = parse_text(GOOD.replace("{w: [3.0, 4.0]}", '{"w\\nimport os": [3.0, 4.0]}'), "f.yaml")
    assert [str(e) for e in res.errors] == ["f.yaml:5: grads.w\nimport os: String should match pattern "
                                             "'^[A-Za-z0-9_][A-Za-z0-9_.]*$'"]
    line = snippets.comment("case file: x\nimport os; os.system('true')\n.yaml:1")
    assert "\n" not in line and line.startswith("# ") and "\\nimport os" in line


# --------------------------------------------------------------------------- 5. the worker's suite

def test_workers_import_the_parents_suite_whatever_the_cwd(tmp_path):
    """A `conformance/` folder in the working directory is never imported by a worker."""
    decoy = tmp_path / "conformance"
    decoy.mkdir()
    (decoy / "__init__.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w').close()\nraise SystemExit(3)\n")
    (decoy / "worker_main.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w').close()\n")
    (tmp_path / "c.yaml").write_text(GOOD.replace("devices: [cpu]", "devices: [cpu]\ntargets: [toy.clip_grad_norm]"))
    env = _env()
    env["PYTHONPATH"] = str(ROOT)  # the parent imports the real suite; the cwd holds the decoy
    r = subprocess.run([sys.executable, "-c", "import sys; sys.path.remove(''); from conformance.cli import main; "
                        "sys.exit(main(sys.argv[1:]))", "run", "c.yaml", "--backend", "toy", "--out", "o",
                        "--no-report"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (tmp_path / "pwned").exists()


# --------------------------------------------------------------------------- 6. interrupted and concurrent runs

def test_ctrl_c_stops_at_once_keeps_what_is_done_and_resume_finishes(tmp_path):
    # 300 cells of 0.04 s: the SIGINT, sent after 20, has ~11 s to arrive before the run could
    # finish by itself (at 200 x 0.02 s a loaded two-core machine once finished first)
    (tmp_path / "many.yaml").write_text(_sweep_case(300))
    out = tmp_path / "out"
    env = _env(TOY_SECONDS_PER_CELL=0.04)
    proc = _start("run", "many.yaml", "--backend", "toy", "--out", out, "--no-report", cwd=tmp_path, env=env)
    _wait_for_cells(out / "results.jsonl", 20, proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 130, stdout + stderr
    print(f"stopped {took:.2f} s after SIGINT")
    assert took < 5  # within about a second on a quiet machine; CI's two cores are not quiet
    doc = results.load(out / "results.json")
    done = len(doc["results"])
    assert 20 <= done < 300 and doc["planned"] == 300 and results.incomplete(doc)
    assert {r["status"] for r in doc["results"]} == {"match"}  # the cell the kill cut is not an error
    # the report says the run is incomplete
    r = _cli("report", out / "results.json", "--out", tmp_path / "rep", cwd=tmp_path)
    assert r.returncode == 0 and "Incomplete run" in (tmp_path / "rep" / "index.html").read_text()
    # a plain rerun refuses to throw the unfinished journal away; --resume finishes it
    r = _cli("run", "many.yaml", "--backend", "toy", "--out", out, cwd=tmp_path)
    assert r.returncode == 2 and "--resume continues it" in r.stderr
    r = _cli("run", "many.yaml", "--backend", "toy", "--out", out, "--resume", "--no-report", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = results.load(out / "results.json")
    ids = [rec["id"] for rec in doc["results"]]
    assert len(ids) == len(set(ids)) == 300 and not results.incomplete(doc)


def test_a_killed_run_resumed_equals_an_uninterrupted_run(tmp_path):
    """Fault injection: SIGKILL of the main process at a random cell, then --resume."""
    import random

    (tmp_path / "many.yaml").write_text(_sweep_case(120))
    whole = _cli("run", "many.yaml", "--backend", "toy", "--out", tmp_path / "whole", "--no-report", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut"
    proc = _start("run", "many.yaml", "--backend", "toy", "--out", out, "--no-report", cwd=tmp_path,
                  env=_env(TOY_SECONDS_PER_CELL=0.01))
    _wait_for_cells(out / "results.jsonl", random.Random(os.getpid()).randint(5, 100), proc)
    proc.kill()
    proc.communicate()
    r = _cli("run", "many.yaml", "--backend", "toy", "--out", out, "--resume", "--no-report", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    keep = ("status", "difference", "max_abs_err", "max_rel_err", "mismatched", "message", "total_norm", "factor")

    def by_id(doc):
        return {rec["id"]: {k: rec.get(k) for k in keep} for rec in doc["results"]}

    a, b = results.load(tmp_path / "whole" / "results.json"), results.load(out / "results.json")
    assert len(b["results"]) == 120 and by_id(a) == by_id(b)


def test_two_runs_into_one_output_folder(tmp_path):
    (tmp_path / "many.yaml").write_text(_sweep_case(100))
    out = tmp_path / "out"
    first = _start("run", "many.yaml", "--backend", "toy", "--out", out, "--no-report", cwd=tmp_path,
                   env=_env(TOY_SECONDS_PER_CELL=0.05))
    try:
        _wait_for_cells(out / "results.jsonl", 1, first)
        second = _cli("run", "many.yaml", "--backend", "toy", "--out", out, "--no-report", cwd=tmp_path)
        assert second.returncode == 2 and "is in use by another run (pid" in second.stderr, second.stderr
    finally:
        first.kill()
        first.communicate()


# --------------------------------------------------------------------------- 7. smaller

@pytest.mark.parametrize("args,expected", [
    (["--timeout", "nan"], "a timeout is a positive, finite number of seconds"),
    (["--timeout", "0"], "a timeout is a positive, finite number of seconds"),
    (["--timeout", "-5"], "a timeout is a positive, finite number of seconds"),
    (["-k", "nothing_matches_this"], "no cells to run (-k 'nothing_matches_this' matches none)"),
    (["--out", "c.yaml"], "--out c.yaml: not a directory"),
    (["--limit", "cells=3"], "NAME one of"),
])
def test_bad_run_arguments_exit_2_with_a_message(tmp_path, args, expected):
    (tmp_path / "c.yaml").write_text(GOOD.replace("devices: [cpu]", "devices: [cpu]\ntargets: [toy.clip_grad_norm]"))
    r = _cli("run", "c.yaml", "--backend", "toy", *args, cwd=tmp_path)
    assert r.returncode == 2 and expected in r.stderr, r.stderr


def test_an_unwritable_output_folder_exits_2(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    (tmp_path / "c.yaml").write_text(GOOD)
    r = _cli("run", "c.yaml", "--backend", "toy", "--out", locked / "x", cwd=tmp_path)
    assert r.returncode == 2 and "cannot create it" in r.stderr


def test_results_files_are_strict_json_and_still_read_back(tmp_path):
    doc = {"results": [{"id": "a", "max_rel_err": float("inf"), "total_norm": {"got": float("nan"), "want": -float("inf")}}]}
    results.write_json(tmp_path / "r.json", doc)
    text = (tmp_path / "r.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in a results file"))
    back = results.load(tmp_path / "r.json")["results"][0]
    assert back["max_rel_err"] == float("inf") and back["total_norm"]["want"] == -float("inf")
    assert back["total_norm"]["got"] != back["total_norm"]["got"]  # NaN
    (tmp_path / "old.json").write_text('{"results": [{"id": "a", "max_rel_err": NaN}]}')  # written before
    assert results.load(tmp_path / "old.json")["results"][0]["max_rel_err"] != 0


def test_report_leaves_foreign_files_in_its_folder_alone(tmp_path):
    from conformance.report import render

    mine = tmp_path / "cases" / "gone.html"
    mine.parent.mkdir(parents=True)
    mine.write_text('<html><head><meta name="generator" content="gradclip-conformance 0.1.0"></head></html>')
    foreign = tmp_path / "cases" / "notes.html"
    foreign.write_text("<html>my notes</html>")
    render({"results": []}, tmp_path, plots=False)
    assert foreign.exists() and not mine.exists()
