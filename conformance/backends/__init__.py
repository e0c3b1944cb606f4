"""Backends: one module per framework, imported only inside a worker subprocess.

This file imports no framework. ``MODULES`` maps a backend name (the first component of an API
name: torch.nn.utils.clip_grad_norm_ -> torch) to the module its worker loads.
"""

from __future__ import annotations

import importlib.util

MODULES = {
    "torch": "conformance.backends.torch_backend",
    "mindspore": "conformance.backends.mindspore_backend",
    "paddle": "conformance.backends.paddle_backend",
}

#: The package that must be importable for each backend (checked without importing it).
PACKAGES = {"torch": "torch", "mindspore": "mindspore", "paddle": "paddle"}


def installed_here(name: str) -> bool:
    """Whether this interpreter could import the framework (find_spec does not import it)."""
    try:
        return importlib.util.find_spec(PACKAGES.get(name, name)) is not None
    except (ImportError, ValueError):
        return False


def _importable_by(python: str, package: str) -> bool:
    """Whether another interpreter can import ``package`` (asked in a subprocess, no import)."""
    import subprocess

    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({package!r}) is None)"
    try:
        return subprocess.run([python, "-c", code], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def default_python(name: str):
    """The interpreter that should run ``name``'s worker, or None.

    In order: $CONFORMANCE_<NAME>_PYTHON, this interpreter if it has the framework, then the
    tox environment of that name (.tox/<name>/bin/python) if it has it, unless
    $CONFORMANCE_NO_TOX_ENVS is set (the tox envs `unit` and `torch` set it, so they test only
    what they install, not the other backends' envs that `make test` built before them).
    """
    import os
    import sys
    from pathlib import Path

    env = os.environ.get(f"CONFORMANCE_{name.upper()}_PYTHON")
    if env:
        return env
    if installed_here(name):
        return sys.executable
    if os.environ.get("CONFORMANCE_NO_TOX_ENVS"):
        return None
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / ".tox" / name / "bin" / "python"
        if candidate.exists() and _importable_by(str(candidate), PACKAGES.get(name, name)):
            return str(candidate)
    return None


def resolve(specs=None):
    """Parse ``--backend NAME[=PYTHON]`` options into (pythons, unavailable, errors).

    With no specs every known backend is tried and the ones not installed are unavailable
    (their cells are skipped with the reason); a backend named explicitly but not importable
    is an error.
    """
    pythons, unavailable, errors = {}, {}, []
    explicit = bool(specs)
    wanted = {}
    for spec in specs or [*MODULES, *(k for k in PACKAGES if k not in MODULES)]:
        name, _, python = spec.partition("=")
        wanted[name] = python or None
    for name, python in wanted.items():
        if name not in MODULES:
            reason = f"no {name} backend in this version of the suite"
            if explicit:
                errors.append(f"--backend {name}: {reason} (known: {', '.join(MODULES)})")
            unavailable[name] = reason
            continue
        python = python or default_python(name)
        package = PACKAGES.get(name, name)
        if python is None:
            reason = (f"{package} is not installed for this interpreter (pip install {package}, "
                      f"or --backend {name}=/path/to/python)")
        elif python != __import__("sys").executable and not _importable_by(python, package):
            reason = f"{python} cannot import {package}"
        else:
            pythons[name] = python
            continue
        if explicit:
            errors.append(f"--backend {name}: {reason}")
        unavailable[name] = reason
    return pythons, unavailable, errors
