"""The pytest plugin inside someone else's project: namespaced options that coexist with a
conftest's own, which YAML files are cases, ids that paste back, strict mode, required
backends. Runs pytest in a subprocess on a project in tmp_path (the toy framework of
tests/toy_framework stands in for a real one; the strict test needs torch)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import frameworks

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "toy_framework"
MARK = "# yaml-language-server: $schema=../case.schema.json\n"
CASE = """\
id: {id}
title: t
dtypes: [float32]
devices: [cpu]
grads: {{w: [3.0, 4.0]}}
clip: {{api: torch.nn.utils.clip_grad_norm_, args: {{max_norm: 1.0}}}}
targets: [toy.clip_grad_norm]
"""


def _pytest(project: Path, *args, timeout=300):
    env = dict(os.environ, CONFORMANCE_FRAMEWORKS_PATH=str(TOY), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pytest", *map(str, args), "-p", "no:cacheprovider",
                           "--rootdir", str(project)], cwd=project, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_plugin_coexists_with_a_conftest_that_defines_device_and_backend(tmp_path):
    _write(tmp_path / "conftest.py", "def pytest_addoption(parser):\n"
                                     "    parser.addoption('--device', default='cuda:0')\n"
                                     "    parser.addoption('--backend', default='nccl')\n\n"
                                     "def test_own(request):\n"
                                     "    assert request.config.getoption('--device') == 'cuda:1'\n")
    _write(tmp_path / "tests" / "clip" / "a.yaml", MARK + CASE.format(id="a"))
    _write(tmp_path / "tests" / "test_own.py", "def test_own(request):\n"
                                               "    assert request.config.getoption('--device') == 'cuda:1'\n")
    r = _pytest(tmp_path, "tests", "--device", "cuda:1", "--conformance-backend", "toy",
                "--conformance-device", "cpu", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 passed" in r.stdout
    # without the conftest the short forms are there
    (tmp_path / "conftest.py").unlink()
    (tmp_path / "tests" / "test_own.py").unlink()
    r = _pytest(tmp_path, "tests", "--backend", "toy", "--device", "cpu", "-q")
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr


def test_which_yaml_files_are_cases(tmp_path):
    _write(tmp_path / "tests" / "clip" / "marked.yaml", MARK + CASE.format(id="marked"))
    _write(tmp_path / "tests" / "clip" / "suffixed.case.yaml", CASE.format(id="suffixed"))
    _write(tmp_path / "tests" / "data" / "cases" / "train_config.yaml", "lr: 0.1\nepochs: 3\n")
    plain = _write(tmp_path / "other" / "plain.yaml", CASE.format(id="plain"))
    r = _pytest(tmp_path, ".", "--backend", "toy", "--collect-only", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "marked[toy.clip_grad_norm-float32-cpu]" in r.stdout and "suffixed[" in r.stdout
    assert "train_config" not in r.stdout and "plain[" not in r.stdout
    r = _pytest(tmp_path, plain, "--backend", "toy", "-q")  # a path given explicitly always is a case
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
    r = _pytest(tmp_path, ".", "--backend", "toy", "--collect-only", "-q", "-o", "conformance_cases=other/*.yaml")
    assert "plain[" in r.stdout and "marked[" not in r.stdout and "suffixed[" not in r.stdout, r.stdout


def test_a_dotted_case_id_reads_and_pastes_back_as_it_is(tmp_path):
    _write(tmp_path / "cases" / "v.yaml", MARK + CASE.format(id="mylib-clip-0.1"))
    r = _pytest(tmp_path, "cases", "--backend", "toy", "-v")
    node = "cases/v.yaml::mylib-clip-0.1[toy.clip_grad_norm-float32-cpu]"
    assert node in r.stdout, r.stdout
    r = _pytest(tmp_path, node, "--backend", "toy", "-q")
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr


def test_required_backends_fail_the_session_when_missing(tmp_path):
    _write(tmp_path / "cases" / "a.yaml", MARK + CASE.format(id="a"))
    r = _pytest(tmp_path, "cases", "--backend", "toy", "--require-backends", "toy", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    r = _pytest(tmp_path, "cases", "--backend", "toy", "--conformance-require-backends", "toy,nosuch", "-q")
    assert r.returncode == 4 and "no backend 'nosuch'" in r.stderr, r.stdout + r.stderr
    r = _pytest(tmp_path, "cases", "--backend", "toy=/nonexistent/python", "-o", "conformance_require_backends=toy", "-q")
    assert r.returncode == 4 and "required backend toy is not available" in r.stderr, r.stdout + r.stderr


@pytest.mark.framework
@pytest.mark.skipif(not frameworks.installed_here("torch"), reason="torch is not installed here")
def test_strict_fails_a_known_cell_with_its_declared_difference(tmp_path):
    """Paddle's ClipGradByGlobalNorm has no epsilon; torch's clip_grad_norm_ adds 1e-6: with a
    norm of 1e-6 the two differ by half, declared as torch-from-paddle-globalnorm-eps."""
    _write(tmp_path / "cases" / "eps.yaml", MARK + """\
id: eps
title: t
dtypes: [float64]
devices: [cpu]
grads: {w: [1.0e-6]}
clip: {api: paddle.nn.ClipGradByGlobalNorm, args: {clip_norm: 1.0e-6}}
targets: [torch.nn.utils.clip_grad_norm_]
""")
    r = _pytest(tmp_path, "cases", "--backend", "torch", "-q")
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
    assert "conformance: known differences" in r.stdout and "torch-from-paddle-globalnorm-eps: eps[" in r.stdout
    r = _pytest(tmp_path, "cases", "--backend", "torch", "-q", "--conformance-strict")
    assert r.returncode == 1 and "1 failed" in r.stdout, r.stdout
    assert "KNOWN (failed by --conformance-strict)" in r.stdout
    assert "declared difference torch-from-paddle-globalnorm-eps" in r.stdout
    r = _pytest(tmp_path, "cases", "--backend", "torch", "-q", "-o", "conformance_strict=true")
    assert r.returncode == 1, r.stdout


# --------------------------------------------------------------------------- the CLI from an installed wheel

def _cli(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env or dict(os.environ, CONFORMANCE_NO_TOX_ENVS="1"))


def test_an_installed_wheel_carries_the_registry_the_schema_and_the_bundled_cases(tmp_path):
    """Built and unpacked outside the repository (a wheel of pure Python is a zip): `validate
    --bundled`, `list apis` and `schema` work from another folder with that copy."""
    import zipfile

    pytest.importorskip("setuptools", minversion="77")
    had_build = (ROOT / "build").exists()
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path / "whl"), "-q"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    if not had_build:  # setuptools builds in the tree; a stale build/lib would leak into later wheels
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp_path / "whl").glob("*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = dict(os.environ, PYTHONPATH=str(site), CONFORMANCE_NO_TOX_ENVS="1")
    where = tmp_path / "elsewhere"
    where.mkdir()
    r = _cli("validate", "--bundled", cwd=where, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"cases: {site / 'conformance' / 'bundled_cases'}" in r.stderr
    assert "files, " in r.stdout and "cases ready to run" in r.stdout
    r = _cli("validate", cwd=where, env=env)  # no ./cases here: the bundled ones
    assert r.returncode == 0 and "bundled_cases" in r.stderr, r.stdout + r.stderr
    r = _cli("list", "apis", cwd=where, env=env)
    assert "paddle.nn.utils.clip_grad_norm_\ttorch.nn.utils.clip_grad_norm_" in r.stdout, r.stdout[:2000]
    r = _cli("schema", "--out", where / "case.schema.json", cwd=where, env=env)
    assert (where / "case.schema.json").read_text() == (site / "conformance" / "bundled_cases" / "case.schema.json").read_text()


def test_validate_reports_every_problem_of_a_file_at_once(tmp_path):
    _write(tmp_path / "two.yaml", "id: two\ntitle: t\ndtyps: [float32]\ngrads: {w: [1.0]}\n"
                                  "clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1.0, norm_typ: 2.0}}\n")
    _write(tmp_path / "ok.yaml", CASE.format(id="ok").replace("targets: [toy.clip_grad_norm]\n", ""))
    r = _cli("validate", tmp_path, cwd=tmp_path)
    assert r.returncode == 2
    assert f"{tmp_path / 'two.yaml'}:3: dtyps: unknown field (did you mean 'dtypes'?)" in r.stderr
    assert f"{tmp_path / 'two.yaml'}:5: clip.args.norm_typ: torch.nn.utils.clip_grad_norm_ has no argument 'norm_typ'" in r.stderr
    assert "2 problems in 1 of the files; 2 files, 1 case ready to run" in r.stderr, r.stderr


def test_an_unmarked_case_under_a_cases_folder_still_runs_with_a_deprecation_warning(tmp_path):
    _write(tmp_path / "cases" / "old.yaml", CASE.format(id="old"))
    _write(tmp_path / "cases" / "config.yaml", "id: not-a-case\nlr: 0.1\n")
    r = _pytest(tmp_path, ".", "--backend", "toy", "-q")
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout + r.stderr
    assert "PytestDeprecationWarning" in r.stdout and "collected as a case because it lies under a `cases` folder" in r.stdout


def test_a_case_file_of_a_newer_format_is_refused_with_the_reason(tmp_path):
    _write(tmp_path / "f.yaml", "format: 2\n" + CASE.format(id="f"))
    r = _cli("validate", tmp_path / "f.yaml", cwd=tmp_path)
    assert r.returncode == 2
    assert "f.yaml:1: format: this file is case format 2; this suite reads format 1 and older" in r.stderr
