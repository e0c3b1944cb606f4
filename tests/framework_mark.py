"""Keeps the ``framework`` mark complete.

Each framework's tox env runs ``pytest tests cases -m "framework or conformance"``: the case cells
(the plugin marks them ``conformance``) and the tests marked ``framework``, those that need a
framework interpreter. The rest of tests/ needs none and runs once, in the unit env, instead of
once per framework env (about 50 s of CI each). So a test that skips for want of a framework (its
skip reason names one of conformance/frameworks/, or an interpreter) and is not marked fails
instead: no env would ever run it. (``browser`` marks the tests that the browser env runs, on the
framework envs' runs: they pass too.) A module that skips while it imports is read for a
``pytestmark`` that names ``framework``. tests/conftest.py imports these hooks; tests/
test_framework_mark.py runs them on a project of their own (``-p framework_mark``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conformance import frameworks

#: the marks of tests that an env with frameworks runs
ENV_MARKS = ("framework", "browser")
FOR_WANT_OF_A_FRAMEWORK = re.compile(r"\b(?:%s)\b|\binterpreter\b" % "|".join(map(re.escape, frameworks.names())),
                                     re.IGNORECASE)


def _reason(report) -> str:
    return report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)


def _unmarked(nodeid: str, reason: str) -> str:
    return (f"{nodeid} skipped for want of a framework ({reason}) but is not marked "
            "@pytest.mark.framework: no framework env would run it (tests/framework_mark.py)")


def module_marked(path: Path) -> bool:
    """Whether the module assigns ``pytestmark`` a value that names ``framework`` (or ``browser``)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            return any(getattr(n, "attr", None) in ENV_MARKS for n in ast.walk(node.value))
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and isinstance(item, pytest.Function) and not any(item.get_closest_marker(m) for m in ENV_MARKS)
            and FOR_WANT_OF_A_FRAMEWORK.search(_reason(report))):
        report.outcome, report.longrepr = "failed", _unmarked(item.nodeid, _reason(report))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if (report.skipped and isinstance(collector, pytest.Module) and FOR_WANT_OF_A_FRAMEWORK.search(_reason(report))
            and not module_marked(collector.path)):
        report.outcome, report.longrepr = "failed", _unmarked(collector.nodeid, _reason(report))
