"""pytest plugin (entry point ``pytest11``): collects ``cases/**/*.yaml`` as one item per cell.

Shaped like pytest's documented YAML example: a ``pytest.File`` yielding ``pytest.Item``s. Items
are named ``case-id[api-dtype-device]``. match/known pass, unsupported/skipped skip with the
reason, mismatch/error fail with the diff and a reproduction snippet. Each item's result record
travels in ``user_properties``, so with pytest-xdist the controller receives every worker's
records and writes one results file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import frameworks, registry, results
from .spec.load import parse_text, read_case_file
from .spec.locations import CaseError
from .plan import plan
from .statuses import PROBLEMS


def pytest_addoption(parser):
    g = parser.getgroup("conformance", "gradclip conformance cases")
    g.addoption("--backend", action="append", metavar="NAME[=PYTHON]", dest="conformance_backend",
                help="backend to run (repeatable; default: every backend installed)")
    g.addoption("--device", choices=["cpu", "gpu", "all"], default="all", dest="conformance_device")
    g.addoption("--results", metavar="PATH", dest="conformance_results",
                help="write the cells' results JSON here (and PATH's .jsonl journal)")
    g.addoption("--report", metavar="DIR", dest="conformance_report",
                help="render the HTML report of this run into DIR")
    g.addoption("--cell-timeout", type=float, default=120.0, dest="conformance_timeout",
                help="seconds one cell may take before its worker is killed")


class _State:
    """Per-process state: backends resolved once, workers started lazily and reused."""

    def __init__(self, config):
        self.config = config
        self.pythons, self.unavailable, self.errors = frameworks.resolve(
            config.getoption("conformance_backend"))
        explicit = config.getoption("conformance_backend")
        self.selected = set(self.pythons) if explicit else set(self.pythons) | set(self.unavailable)
        self._runner = None
        self.case_ids: dict = {}

    @property
    def runner(self):
        if self._runner is None:
            from .runner import Runner
            from .worker import WorkerPool

            pool = WorkerPool(frameworks.workers(), self.pythons)
            self._runner = Runner(registry.load(), pool, self.unavailable,
                                  timeout=self.config.getoption("conformance_timeout"))
        return self._runner

    def close(self):
        if self._runner is not None:
            self._runner.pool.close()


def pytest_configure(config):
    config._conformance = _State(config)
    if config._conformance.errors:
        raise pytest.UsageError("; ".join(config._conformance.errors))
    config._conformance_writer = None
    is_xdist_worker = hasattr(config, "workerinput")
    out = config.getoption("conformance_results")
    report_dir = config.getoption("conformance_report")
    if not is_xdist_worker and (out or report_dir):
        path = Path(out) if out else Path(report_dir) / "results.json"
        config._conformance_writer = results.Writer(path, registry=registry.load().snapshot())


def pytest_unconfigure(config):
    state = getattr(config, "_conformance", None)
    if state is not None:
        state.close()


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix in (".yaml", ".yml") and "cases" in file_path.parts:
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    def collect(self):
        state = self.config._conformance
        text = read_case_file(self.path)
        if isinstance(text, CaseError):  # unreadable, not UTF-8, too big, not a regular file
            yield CaseErrorItem.from_parent(self, name=f"line {text.line}: file", error=text)
            return
        loaded = parse_text(text, str(self.path))
        p = plan(loaded.cases, registry.load(), backends=state.selected,
                 device=self.config.getoption("conformance_device"))
        ids = state.case_ids  # ids are unique across the session, as load_paths checks for the CLI
        for sc in loaded.cases:
            first = ids.setdefault(sc.case.id, f"{sc.path}:{sc.line}")
            if first != f"{sc.path}:{sc.line}":
                loaded.errors.append(CaseError(sc.path, sc.lines.get(("id",), sc.line), "id",
                                                    f"duplicate case id {sc.case.id!r} (also at {first})"))
                p.cells = [c for c in p.cells if c.source is not sc]
        for err in loaded.errors + p.errors:
            yield CaseErrorItem.from_parent(self, name=f"line {err.line}: {err.field or 'file'}", error=err)
        for cell in p.cells:
            yield CellItem.from_parent(self, name=cell.id, cell=cell)


class CaseErrorItem(pytest.Item):
    """A case-file problem is a failing item: the rest of the file and suite still run."""

    def __init__(self, *, error, **kw):
        super().__init__(**kw)
        self.error = error

    def runtest(self):
        raise CaseFileError(str(self.error))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CaseFileError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.error.line - 1, f"case file error: {self.error.field}"


class CaseFileError(Exception):
    pass


class CellFailure(Exception):
    def __init__(self, record: dict):
        super().__init__(record["message"])
        self.record = record


class CellItem(pytest.Item):
    def __init__(self, *, cell, **kw):
        super().__init__(**kw)
        self.cell = cell
        self.extra_keyword_matches.update(cell.case.tags)  # `pytest -k seed` selects by tag

    def runtest(self):
        rec = self.config._conformance.runner.run(self.cell)
        self.user_properties.append(("conformance", rec))
        status = rec["status"]
        if status in ("skipped", "unsupported"):
            pytest.skip(f"{status}: {rec['message']}")
        if status in PROBLEMS:
            raise CellFailure(rec)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CellFailure):
            return format_failure(excinfo.value.record)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.cell.source.line - 1, self.cell.id


def format_failure(r: dict) -> str:
    lines = [f"{r['status'].upper()}: {r['api']} ({r['backend']}, {r['dtype']}, {r['device']}) "
             f"against the oracle of {r['source_api']}",
             f"case file: {r['path']}", "", r["message"] or "(no message)"]
    if r.get("max_abs_err") is not None:
        lines.append(f"max abs err {r['max_abs_err']:.6g}, max rel err {r['max_rel_err']:.6g}, "
                     f"mismatched elements {r['mismatched']}")
    tol = r.get("tolerance") or {}
    if tol:
        lines.append(f"tolerance: |got - want| <= atol + rtol * |want| with rtol {tol['rtol']:g}, atol {tol['atol']:g}")
    for name, m in (r.get("params") or {}).items():
        if m["mismatched"]:
            lines.append(f"  {name}: {m['mismatched']}/{m['size']} mismatched, max abs {m['max_abs_err']:.6g}, "
                         f"max rel {m['max_rel_err']:.6g}")
    tn = r.get("total_norm") or {}
    if tn.get("want") is not None or tn.get("got") is not None:
        lines.append(f"returned norm: got {tn.get('got')!r}, oracle {tn.get('want')!r}")
    if r.get("reproduce"):
        lines += ["", f"reproduce in {r['backend']}:", r["reproduce"]]
    return "\n".join(lines)


def pytest_runtest_logreport(report):
    """Runs in the controller for every item's report (xdist forwards user_properties)."""
    if report.when != "call" and not (report.when == "setup" and report.skipped):
        return
    for key, rec in report.user_properties:
        if key == "conformance":
            writer = _writer
            if writer is not None:
                writer.add(rec)


_writer = None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    global _writer
    _writer = getattr(session.config, "_conformance_writer", None)


def pytest_sessionfinish(session):
    global _writer
    writer, _writer = _writer, None
    if writer is None:
        return
    versions = {}
    for r in writer.doc["results"]:
        if r.get("backend_version"):
            b = versions.setdefault(r["backend"], {"version": r["backend_version"], "devices": []})
            if r["status"] not in ("skipped",) and r["device"] not in b["devices"]:
                b["devices"].append(r["device"])
    writer.set_backends(versions)
    doc = writer.close()
    report_dir = session.config.getoption("conformance_report")
    if report_dir:
        from . import report

        report.render(doc, report_dir)
