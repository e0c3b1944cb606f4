"""The tox environments the framework folders need, written into tox.ini (which tox reads as it
stands, so it cannot discover them itself): one environment per framework, its dependencies
and variables from its ``FRAMEWORK``; the ``browser`` environment, which runs the report of every
framework's real run. There is no environment with every framework in one interpreter: their
pins conflict (MindSpore needs numpy<2, jax numpy>=2), and the suite never needs one, since each
framework runs in its own worker process under its own environment's interpreter. Each
framework env writes its bundled cells' results to ``.tox/results/<name>.json``, and ``browser``
tests the report of those (``make test`` clears them first). ``python -m
conformance.frameworks tox-ini`` rewrites them; a unit test checks that tox.ini is current.
Standard library only (``make`` runs it with the machine's python3, before any environment)."""

from __future__ import annotations

from . import discover

BEGIN = "# ---- generated from conformance/frameworks/*/__init__.py by `python -m conformance.frameworks tox-ini`; do not edit below"


def _lines(key: str, values) -> list:
    return [f"{key} =", *(f"    {v}" for v in values)] if values else []


def framework_env(fw) -> str:
    setenv = ["{[testenv]setenv}", "CONFORMANCE_NO_TOX_ENVS = 1",
              *(f"{k} = {v}" for k, v in fw.tox_setenv.items())]
    lines = [f"[testenv:{fw.name}]",
             f"description = {fw.title} backend: the suite's tests and every bundled case on {fw.title}, in its own",
             "    interpreter (the other frameworks' environments are not looked for)",
             *( [f"extras = {', '.join(fw.tox_extras)}"] if fw.tox_extras else []),
             *_lines("deps", ["{[testenv]deps}", *fw.tox_deps] if fw.tox_deps else []),
             *_lines("setenv", setenv),
             # its cells' results go to .tox/results/, where the browser env finds them (a
             # second run of every bundled case just for the report took 10 minutes of CI)
             # -m: the case cells and the tests that need a framework; the rest of tests/ runs
             # once, in the unit env (tests/framework_mark.py keeps the `framework` mark complete)
             *_lines("commands", [f"pytest tests cases --backend {fw.name} -m \"framework or conformance\" -n auto "
                                  f"--conformance-results {{toxworkdir}}{{/}}results{{/}}{fw.name}.json {{posargs}}",
                                  # the compiled half: CI's selection (conformance/selection.py)
                                  *([f"pytest cases --backend {fw.name} --conformance-mode compiled "
                                     "--conformance-select ci -n auto"] if fw.compiled else [])])]
    return "\n".join(lines)


def browser_env(found: dict) -> str:
    pythons = [f"CONFORMANCE_{name.upper()}_PYTHON = {{toxworkdir}}{{/}}{name}{{/}}bin{{/}}python" for name in found]
    return "\n".join([
        "[testenv:browser]",
        "description = the HTML report in headless Chromium (the distribution's /usr/bin/chromium, driven by",
        "    Playwright; never a downloaded browser) on the results of the bundled cases that the framework",
        "    envs wrote into .tox/results/ in this tox run, else on a fresh run under each framework env's",
        "    interpreter (build those first)",
        "extras = report",
        *_lines("deps", ["{[testenv]deps}", "playwright>=1.40"]),
        *_lines("setenv", ["{[testenv]setenv}", "CONFORMANCE_BROWSER_REQUIRED = 1", *pythons,
                           "CONFORMANCE_BROWSER_RUNS = {toxworkdir}{/}results",
                           "CONFORMANCE_SCREENSHOTS = {toxinidir}{/}reports{/}screenshots"]),
        "# CONFORMANCE_BROWSER_RESULTS=results.json: test the report of that file instead of a fresh run",
        "pass_env = CONFORMANCE_BROWSER_RESULTS",
        "commands = pytest tests/test_browser.py -v -s -p no:xdist {posargs}"])


def generated() -> str:
    found = discover()
    envs = [framework_env(fw) for fw in found.values()] + [browser_env(found)]
    return BEGIN + "\n\n" + "\n\n".join(envs) + "\n"


def render(text: str) -> str:
    """tox.ini's ``text`` with its generated part (and the envlist's frameworks) made current."""
    head = text.split(BEGIN, 1)[0].rstrip("\n") + "\n\n"
    envlist = "envlist = " + ", ".join(["unit", *discover()])
    head = "\n".join(envlist if line.startswith("envlist =") else line for line in head.split("\n"))
    return head + generated()
