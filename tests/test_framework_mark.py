"""The ``framework`` mark's guard (tests/framework_mark.py) on a project of its own: a test or
module that skips for want of a framework fails unless it is marked; other skips stay skips."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
ARGS = ("-p", "framework_mark", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestAssertRewriteWarning")

BODY = """
import pytest

{mark}
def test_it():
    pytest.skip({reason!r})
"""


@pytest.mark.parametrize("reason, fails", [
    ("torch is not installed here", True),
    ("no interpreter with paddle (set CONFORMANCE_PADDLE_PYTHON)", True),
    ("could not import 'MindSpore': No module named 'mindspore'", True),
    ("set CONFORMANCE_TEST_PYTHON to another interpreter with numpy", True),
    ("root writes anywhere", False),
    ("CONFORMANCE_AUDIT_RESULTS not set", False),
    ("torchvision-free: torches", False),  # not the word torch
])
def test_a_skip_for_want_of_a_framework_fails_unless_marked(pytester, reason, fails):
    pytester.makepyfile(test_unmarked=BODY.format(mark="", reason=reason),
                        test_marked=BODY.format(mark="@pytest.mark.framework", reason=reason),
                        test_browser_env=BODY.format(mark="@pytest.mark.browser", reason=reason))
    r = pytester.runpytest(*ARGS)
    r.assert_outcomes(failed=1, skipped=2) if fails else r.assert_outcomes(skipped=3)
    if fails:
        r.stdout.fnmatch_lines(["*test_unmarked.py::test_it skipped for want of a framework*not marked*"])


def test_a_module_that_skips_as_it_imports_fails_unless_its_pytestmark_names_framework(pytester):
    skip = "pytest.skip(\"could not import 'jax'\", allow_module_level=True)"  # as importorskip says
    pytester.makepyfile(test_unmarked=f"import pytest\n{skip}\n",
                        test_marked=f"import pytest\npytestmark = [pytest.mark.framework]\n{skip}\n",
                        test_other=f"import pytest\npytestmark = pytest.mark.slow\n{skip}\n")
    r = pytester.runpytest(*ARGS)
    r.stdout.fnmatch_lines(["*test_unmarked.py skipped for want of a framework*"])
    r.stdout.fnmatch_lines(["*test_other.py skipped for want of a framework*"])
    assert r.ret == 2 and "test_marked.py skipped for want" not in r.stdout.str()
