"""docs/ci.md's GitHub Actions workflow: valid YAML with one job per framework, a GPU job only
where a runner is configured, a last job that merges every job's results, and only options
that the pytest plugin and the CLI really have."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from conformance import cli, frameworks
from conformance.pytest_plugin import OPTIONS

DOC = Path(__file__).resolve().parents[1] / "docs" / "ci.md"


def _workflow() -> dict:
    (block,) = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    return yaml.safe_load(block)


def test_one_job_per_framework_and_a_report_job_that_needs_them_all():
    wf = _workflow()
    jobs = wf["jobs"]
    matrix = jobs["cells"]["strategy"]["matrix"]
    assert set(matrix["backend"]) == set(frameworks.discover())
    assert {i["backend"] for i in matrix["include"]} == set(matrix["backend"])
    assert all("install" in i for i in matrix["include"])
    assert "vars.GPU_RUNNER" in jobs["gpu-cells"]["if"]
    assert set(jobs["report"]["needs"]) == {"cells", "gpu-cells"} and jobs["report"]["if"] == "always()"
    merged = " ".join(s.get("run", "") for s in jobs["report"]["steps"])
    assert "conformance report results/*.json" in merged


def test_every_option_the_recipe_uses_exists():
    wf = _workflow()
    runs = [s["run"] for job in wf["jobs"].values() for s in job["steps"] if "run" in s]
    plugin = {f"--conformance-{name}" for name, _short, _kw in OPTIONS} | {"-n"}
    used = {flag for r in runs if r.lstrip().startswith("pytest") for flag in re.findall(r"(?<!\S)(-{1,2}[a-z][a-z-]*)", r)}
    assert used and used <= plugin, used - plugin
    conformance = [r for r in runs if r.startswith("conformance ")]
    assert conformance
    for r in conformance:  # the CLI's own parser takes the command as written (exits 2 if not)
        cli.build_parser().parse_args(shlex.split(r)[1:])
