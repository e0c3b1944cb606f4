"""Kinds of case, one folder each: ``conformance/kinds/<kind>/`` (clipping, derivation, training).

A kind is found by discovery, never listed by hand: every sub-package here is a kind. It has

- ``block.py``: ``BLOCK``, a :class:`~conformance.kinds.interface.Block`: what the kind adds to
  a case file, which fields make a case of this kind, and its checks of a whole case. The case
  model (``conformance.spec.case``) is built from the blocks; the kind of a case is decided
  there, once, when it is loaded.
- ``oracle.py``: the kind's float64 numpy oracle, one pure function per semantic, the formula in
  its docstring. A registry API of this kind names one of them; its variant knobs are that
  function's keyword-only parameters (checked when the registry loads).
- ``cell.py``: ``KIND``, a :class:`~conformance.kinds.interface.Kind`: how a cell of this kind
  translates its arguments, builds its worker job, compares the worker's result with the
  oracle's, and writes its reproduction snippet (through the frameworks' snippet tables).

Two halves, imported apart: the case model needs the blocks while the cells need the case model.
Standard library only here.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache


@lru_cache(maxsize=None)
def names() -> tuple:
    """Every kind, in name order: the sub-packages of this package."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg))


@lru_cache(maxsize=None)
def part(name: str) -> dict:
    """``{kind: conformance.kinds.<kind>.<name>}`` for every kind (``block``, ``oracle``, ``cell``)."""
    return {kind: importlib.import_module(f"{__name__}.{kind}.{name}") for kind in names()}


def blocks() -> dict:
    """``{kind: Block}``: what each kind adds to the case file."""
    return {kind: module.BLOCK for kind, module in part("block").items()}


def oracles() -> dict:
    """``{kind: oracle module}``."""
    return part("oracle")


def kinds() -> dict:
    """``{kind: Kind}``: how each kind runs a cell."""
    return {kind: module.KIND for kind, module in part("cell").items()}
