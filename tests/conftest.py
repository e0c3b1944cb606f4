"""Shared fixtures for the tests that drive the real torch worker."""

from __future__ import annotations

import sys

import pytest

from conformance import backends, spec
from conformance.plan import plan
from conformance.worker import WorkerPool


@pytest.fixture(scope="session")
def pool():
    """One torch worker for the whole test session (started on first use)."""
    p = WorkerPool(dict(backends.MODULES), {"torch": sys.executable})
    yield p
    p.close()


def torch_cells(paths, reg, keyword=None) -> list:
    """The torch/cpu cells of the case files under ``paths``; the files must be valid."""
    loaded = spec.load_paths(paths)
    assert not loaded.errors
    p = plan(loaded.cases, reg, backends={"torch"}, device="cpu", keyword=keyword)
    assert not p.errors
    return p.cells
