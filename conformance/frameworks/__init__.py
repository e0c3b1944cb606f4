"""Frameworks, one folder each: ``conformance/frameworks/<name>/`` (torch, mindspore, paddle).

A framework is found by discovery, never listed by hand: every sub-package here whose
``__init__.py`` defines ``FRAMEWORK`` (a :class:`~conformance.frameworks.base.Framework`) is
one; so is every such folder under a directory named in ``$CONFORMANCE_FRAMEWORKS_PATH``
(``os.pathsep``-separated: frameworks kept outside the suite, a test's toy framework), which
joins this package's path, so workers (which inherit the variable) import it the same way. A
framework's ``worker.py`` is imported only inside its worker subprocess; this module, the
folders' ``__init__.py`` and ``snippets.py`` import no framework. Standard library only.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Optional

from .base import Framework

#: what may follow ``@`` in a backend name (``paddle@3.0``, ``torch@2.5+cpu``)
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

__path__ += [d for d in os.environ.get("CONFORMANCE_FRAMEWORKS_PATH", "").split(os.pathsep) if d]


@lru_cache(maxsize=None)
def discover() -> dict:
    """``{name: Framework}`` for every framework folder, by ``order`` then name."""
    found = {}
    for m in pkgutil.iter_modules(__path__):
        if m.ispkg and m.name not in found:
            framework = getattr(importlib.import_module(f"{__name__}.{m.name}"), "FRAMEWORK", None)
            if isinstance(framework, Framework):
                found[m.name] = framework
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def names() -> list:
    return list(discover())


def part(name: str, module: str):
    """``conformance.frameworks.<name>.<module>`` (``snippets``: text only, safe in the main
    process; ``worker``: imports the framework, for worker processes only)."""
    return importlib.import_module(f"{__name__}.{name}.{module}")


def registry_files() -> list:
    """Every framework's registry YAML files (``<folder>/registry/*.yaml``), framework by
    framework, each folder's files in name order."""
    out = []
    for name in discover():
        spec = importlib.util.find_spec(f"{__name__}.{name}")
        folder = Path(spec.origin).parent / "registry"
        out += sorted(folder.glob("*.yaml"))
    return out


def package(name: str) -> str:
    """The package that says framework ``name`` is installed (``name`` itself for an unknown one)."""
    fw = discover().get(name)
    return fw.package if fw else name


@lru_cache(maxsize=4096)  # asked for every cell's mapping, several times a cell
def api_framework(api: str) -> str:
    """The framework an API name belongs to: its first component, or the framework that claims
    that component among its ``prefixes`` (``optax.clip`` is jax's)."""
    first = (api or "").split(".", 1)[0]
    for name, fw in discover().items():
        if first in fw.prefixes:
            return name
    return first


def framework_of(backend: str) -> str:
    """The framework a backend runs: ``paddle@3.0`` (a second, labelled interpreter of Paddle,
    ``--backend paddle@3.0=/venv-old/bin/python``) runs paddle."""
    return backend.partition("@")[0]


def workers(backends=()) -> dict:
    """``{backend: worker module}``: what a WorkerPool starts for each framework, and for each
    labelled backend in ``backends`` (``paddle@3.0``) its framework's module."""
    out = {name: fw.worker for name, fw in discover().items()}
    out.update({b: out[framework_of(b)] for b in backends if framework_of(b) in out})
    return out


def recycling(backends=()) -> dict:
    """``{(backend, mode): cells}``: after how many cells a WorkerPool replaces the worker of
    that backend and mode (``Framework.recycle_after``), labelled backends included."""
    found, out = discover(), {}
    for b in list(found) + list(backends):
        fw = found.get(framework_of(b))
        if fw is not None:
            out.update({(b, mode): n for mode, n in fw.recycle_after.items()})
    return out


def installed_here(name: str) -> bool:
    """Whether this interpreter could import the framework (find_spec does not import it)."""
    try:
        return importlib.util.find_spec(package(name)) is not None
    except (ImportError, ValueError):
        return False


@lru_cache(maxsize=None)  # asked by default_python, then by resolve, of one interpreter
def _importable_by(python: str, package: str) -> bool:
    """Whether another interpreter can import ``package`` (asked in a subprocess, no import)."""
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
    env = os.environ.get(f"CONFORMANCE_{name.upper()}_PYTHON")
    if env:
        return env
    if installed_here(name):
        return sys.executable
    if os.environ.get("CONFORMANCE_NO_TOX_ENVS"):
        return None
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / ".tox" / name / "bin" / "python"
        if candidate.exists() and _importable_by(str(candidate), package(name)):
            return str(candidate)
    return None


def resolve(specs=None):
    """Parse ``--backend NAME[@LABEL][=PYTHON]`` options into (pythons, unavailable, errors).

    ``NAME@LABEL`` is a second backend of the same framework under its own interpreter (two
    versions side by side in one run: ``--backend paddle@3.0=/venv-old/bin/python --backend
    paddle``); its cells carry the label in their ids and ``backend`` and share their ``key``
    with the unlabelled backend's, so ``conformance diff --old paddle@3.0 --new paddle`` pairs
    them. With no specs every known backend is tried and the ones not installed are unavailable
    (their cells are skipped with the reason); a backend named explicitly but not usable is an
    error that says why (no such interpreter, or it cannot import the framework).
    """
    pythons, unavailable, errors = {}, {}, []
    explicit = bool(specs)
    wanted = {}
    known = discover()
    for spec in specs or list(known):
        name, _, python = spec.partition("=")
        wanted[name] = python or None
    for name, python in wanted.items():
        fw, at, label = name.partition("@")
        if fw not in known or (at and not LABEL.fullmatch(label)):
            reason = (f"no {fw} backend in this version of the suite" if fw not in known else
                      f"the label {label!r} is not a version label (letters, digits, . _ + -)")
            if explicit:
                errors.append(f"--backend {name}: {reason} (known: {', '.join(known)})")
            unavailable[name] = reason
    named = [(name, python) for name, python in wanted.items() if name not in unavailable]
    # each check may start an interpreter (``_importable_by``: 0.06 s apiece, and five backends'
    # were 0.59 s one after another, all before a run's first worker starts): side by side
    with ThreadPoolExecutor(max_workers=max(1, len(named))) as ex:
        checked = list(ex.map(lambda item: _usable(known, *item), named))
    for (name, _), (python, reason) in zip(named, checked):
        if reason is None:
            pythons[name] = python
            continue
        if explicit:
            errors.append(f"--backend {name}: {reason}")
        unavailable[name] = reason
    return pythons, unavailable, errors


def _usable(known: dict, name: str, python: Optional[str]) -> tuple:
    """``(python, None)`` when backend ``name`` (``--backend NAME=PYTHON``, PYTHON possibly
    None: the default) can run, else ``(python, why not)``."""
    fw = name.partition("@")[0]
    python = python or default_python(fw)
    pkg = known[fw].package
    if python is None:
        return python, (f"{pkg} is not installed for this interpreter (pip install {known[fw].pip}, "
                        f"or --backend {name}=/path/to/python)")
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        return python, f"no such interpreter: {python}"
    if not (installed_here(fw) if os.path.abspath(python) == os.path.abspath(sys.executable)
            else _importable_by(python, pkg)):
        return python, f"{python} cannot import {pkg}"
    return python, None


def requested(specs=None) -> set:
    """The backends a run was asked for, by ``--backend`` or ``$CONFORMANCE_<NAME>_PYTHON``: one
    of them that cannot start is an error of the run, not a skipped backend."""
    names = {spec.partition("=")[0] for spec in specs or ()}
    return names | {name for name in discover() if os.environ.get(f"CONFORMANCE_{name.upper()}_PYTHON")}
