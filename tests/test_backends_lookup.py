"""Which interpreter runs a backend's worker (conformance.frameworks.default_python), tested with a
fake framework `fakefw` that only a fake tox environment can import (no real framework needed)."""

from __future__ import annotations

import os
import stat
import sys

from conformance import frameworks


def _fake_tox_env(root, name="fakefw"):
    """root/.tox/NAME/bin/python: this interpreter with a package NAME on its path."""
    site = root / "site"
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text("")
    python = root / ".tox" / name / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return python


def test_a_tox_env_that_has_the_framework_is_found(tmp_path, monkeypatch):
    python = _fake_tox_env(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONFORMANCE_FAKEFW_PYTHON", raising=False)
    monkeypatch.delenv("CONFORMANCE_NO_TOX_ENVS", raising=False)
    assert not frameworks.installed_here("fakefw")
    assert frameworks.default_python("fakefw") == str(python)


def test_no_tox_envs_stops_the_lookup_but_not_an_explicit_interpreter(tmp_path, monkeypatch):
    _fake_tox_env(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONFORMANCE_NO_TOX_ENVS", "1")
    monkeypatch.delenv("CONFORMANCE_FAKEFW_PYTHON", raising=False)
    assert frameworks.default_python("fakefw") is None
    monkeypatch.setenv("CONFORMANCE_FAKEFW_PYTHON", "/opt/fw/bin/python")
    assert frameworks.default_python("fakefw") == "/opt/fw/bin/python"


def test_a_tox_env_without_the_framework_is_not_taken(tmp_path, monkeypatch):
    python = _fake_tox_env(tmp_path)
    (tmp_path / "site" / "fakefw" / "__init__.py").unlink()
    os.rmdir(tmp_path / "site" / "fakefw")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONFORMANCE_NO_TOX_ENVS", raising=False)
    assert python.exists() and frameworks.default_python("fakefw") is None
