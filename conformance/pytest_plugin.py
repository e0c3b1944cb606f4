"""pytest plugin (entry point ``pytest11``): collects case files as one item per cell.

Shaped like pytest's documented YAML example: a ``pytest.File`` yielding ``pytest.Item``s. Items
are named ``case-id[api-dtype-device]``. match/known pass (known fails under
``--conformance-strict``), unsupported/skipped skip with the reason, mismatch/error fail with
the diff and a reproduction snippet. Each item's result record travels in ``user_properties``,
so with pytest-xdist the controller receives every worker's records and writes one results file.

Which YAML files are cases: a path given on the command line always is; else the ini option
``conformance_cases`` (globs relative to the rootdir) decides when set; else a file is a case
when its name ends in ``.case.yaml`` or its first lines carry the schema marker
``# yaml-language-server: $schema=.../case.schema.json``. Options are namespaced
(``--conformance-backend``, ...); the short forms (``--backend``, ...) are added only where no
other plugin or conftest has taken them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from . import frameworks, registry, results, selection, shard
from .spec.load import parse_text, read_case_file
from .spec.locations import CaseError
from .plan import call_problems, plan
from .statuses import PROBLEMS

#: (long name after ``--conformance-``, short form or None, argparse keywords)
OPTIONS = (
    ("backend", "--backend", dict(action="append", metavar="NAME[@LABEL][=PYTHON]", dest="conformance_backend",
                                  help="backend to run (repeatable; default: the ini list conformance_backends, "
                                       "else every backend installed)")),
    ("device", "--device", dict(choices=["cpu", "gpu", "all"], default="all", dest="conformance_device",
                                help="device of the cells to run (default: all)")),
    ("mode", "--mode", dict(choices=["eager", "compiled", "all"], default="eager", dest="conformance_mode",
                            help="eager cells (default), compiled cells, or both (docs/modes.md)")),
    ("shard", "--shard", dict(metavar="K/N", dest="conformance_shard",
                              help="run only shard K of N of the cells (whole cases, balanced by measured cost): "
                                   "one CI machine's share")),
    # no short form: --select is a common name
    ("select", None, dict(choices=["ci"], dest="conformance_select",
                          help="run only a deterministic selection of whole cases that covers every "
                               "(framework, API, dtype, mode) and every mode-conditioned registry entry "
                               "(conformance/selection.py): what CI runs of the compiled half")),
    ("results", "--results", dict(metavar="PATH", dest="conformance_results",
                                  help="write the cells' results JSON here (its .jsonl journal while cells run)")),
    ("report", "--report", dict(metavar="DIR", dest="conformance_report",
                                help="render the HTML report of this run into DIR")),
    ("cell-timeout", "--cell-timeout", dict(type=float, default=120.0, dest="conformance_timeout",
                                            help="seconds one cell may take before its worker is killed")),
    # no short form: pytest's own --strict exists
    ("strict", None, dict(action="store_true", default=False, dest="conformance_strict",
                          help="known cells fail, with their declared difference (also: ini conformance_strict)")),
    ("require-backends", "--require-backends", dict(metavar="NAME,NAME", dest="conformance_require",
                                                    help="fail when one of these backends is not available "
                                                         "(also: ini conformance_require_backends)")),
)

LEGACY_CASE = re.compile(r"^(clip|call):", re.M)
SCHEMA_MARK = re.compile(r"^#\s*yaml-language-server:\s*\$schema=\S*case\.schema\.json\s*$", re.M)


def pytest_addoption(parser):
    g = parser.getgroup("conformance", "gradclip conformance cases")
    for name, _short, kw in OPTIONS:
        g.addoption(f"--conformance-{name}", **kw)
    parser.addini("conformance_cases", type="args", default=[],
                  help="globs of case files, relative to the rootdir (default: files marked as cases)")
    parser.addini("conformance_backends", type="args", default=[], help="backends to run (NAME or NAME=PYTHON)")
    parser.addini("conformance_require_backends", type="args", default=[],
                  help="backends that must be available (else the session fails)")
    parser.addini("conformance_strict", type="bool", default=False, help="known cells fail")


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """After the rootdir's conftests have added their options: the short forms that are free."""
    result = yield
    taken = _option_strings(parser)
    g = parser.getgroup("conformance")
    for name, short, kw in OPTIONS:
        if short is not None and short not in taken:
            g.addoption(short, **{**kw, "help": f"short for --conformance-{name}"})
    return result


def _option_strings(parser) -> set:
    """Every option string registered so far. pytest offers no public listing of them, so this
    reads its Parser's groups (pytest 7-9 keep them in ``_anonymous`` and ``_groups``)."""
    groups = [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", [])]
    return {name for g in groups if g is not None for opt in g.options for name in opt.names()}


class _State:
    """Per-process state: backends resolved once, workers started lazily and reused."""

    def __init__(self, config):
        self.config = config
        explicit = config.getoption("conformance_backend") or config.getini("conformance_backends") or None
        self.pythons, self.unavailable, self.errors = frameworks.resolve(explicit)
        self.selected = set(self.pythons) if explicit else set(self.pythons) | set(self.unavailable)
        self.strict = bool(config.getoption("conformance_strict") or config.getini("conformance_strict"))
        given = config.getoption("conformance_require")
        self.required = ([b.strip() for b in given.split(",") if b.strip()] if given
                         else list(config.getini("conformance_require_backends")))
        known = set(frameworks.discover())
        for b in self.required:
            if frameworks.framework_of(b) not in known:
                self.errors.append(f"--conformance-require-backends: no backend {b!r} (known: {', '.join(sorted(known))})")
            elif b not in self.pythons:
                why = self.unavailable.get(b, "not selected by --conformance-backend")
                self.errors.append(f"required backend {b} is not available: {why}")
        self._runner = None
        self.case_ids: dict = {}
        self._globbed = None

    def is_case_file(self, path: Path) -> bool:
        """A file named by the ini globs, or (without them) one marked as a case file."""
        globs = self.config.getini("conformance_cases")
        if globs:
            if self._globbed is None:
                root = self.config.rootpath
                self._globbed = {p.resolve() for g in globs for p in root.glob(g)}
            return path.resolve() in self._globbed
        if path.name.endswith((".case.yaml", ".case.yml")):
            return True
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                head = f.read(65536)
        except OSError:
            return False
        if SCHEMA_MARK.search("\n".join(head.splitlines()[:5])):
            return True
        # before markers (suite 0.1.0): any YAML under a `cases` folder. Kept, with a warning,
        # for files that read as cases (top-level `id:` and `clip:`/`call:`) for one release
        if "cases" in path.parts and LEGACY_CASE.search(head) and re.search(r"^id:", head, re.M):
            self.config.issue_config_time_warning(pytest.PytestDeprecationWarning(
                f"{path}: collected as a case because it lies under a `cases` folder; mark it (first line "
                "`# yaml-language-server: $schema=.../case.schema.json`, or name it *.case.yaml) or list it "
                "in the ini option conformance_cases: unmarked files will not be collected after 0.2"), stacklevel=2)
            return True
        return False

    @property
    def runner(self):
        if self._runner is None:
            from .runner import Runner
            from .worker import WorkerPool

            pool = WorkerPool(frameworks.workers(self.pythons), self.pythons,
                              recycle=frameworks.recycling(self.pythons))
            self._runner = Runner(registry.load(), pool, self.unavailable,
                                  timeout=self.config.getoption("conformance_timeout"))
        return self._runner

    def close(self):
        if self._runner is not None:
            self._runner.pool.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "conformance: a case file's cell or error, collected by the conformance "
                                       "plugin (`-m conformance` selects the cases alone)")
    config._conformance = _State(config)
    spec = config.getoption("conformance_shard")
    if spec:
        try:
            shard.parse(spec)
        except ValueError as e:
            config._conformance.errors.append(str(e))
    if config._conformance.errors:
        raise pytest.UsageError("; ".join(config._conformance.errors))
    config._conformance_writer = None
    is_xdist_worker = hasattr(config, "workerinput")
    out = config.getoption("conformance_results")
    report_dir = config.getoption("conformance_report")
    if not is_xdist_worker and (out or report_dir):
        path = Path(out) if out else Path(report_dir) / "results.json"
        config._conformance_writer = results.Writer(path, registry=registry.load().snapshot())


def pytest_collection_modifyitems(session, config, items):
    """``--conformance-select ci`` keeps the CI selection's cells (conformance/selection.py), then
    ``--conformance-shard K/N`` the cells of shard K (conformance/shard.py); the rest are
    deselected. The suite's own tests and case-file errors always stay."""
    how, spec = config.getoption("conformance_select"), config.getoption("conformance_shard")
    if not how and not spec:
        return
    cells = [i.cell for i in items if isinstance(i, CellItem)]
    if how:
        cells = selection.select(cells, registry.load(), how)
    if spec:
        cells = shard.select(cells, *shard.parse(spec))
    keep = {id(c) for c in cells}
    dropped = [i for i in items if isinstance(i, CellItem) and id(i.cell) not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if not (isinstance(i, CellItem) and id(i.cell) not in keep)]


def pytest_unconfigure(config):
    state = getattr(config, "_conformance", None)
    if state is not None:
        state.close()


def pytest_collect_file(file_path: Path, parent):
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    if parent.session.isinitpath(file_path) or parent.config._conformance.is_case_file(file_path):
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
                 device=self.config.getoption("conformance_device"),
                 mode=self.config.getoption("conformance_mode"))
        ids = state.case_ids  # ids are unique across the session, as load_paths checks for the CLI
        for sc in loaded.cases:
            first = ids.setdefault(sc.case.id, f"{sc.path}:{sc.line}")
            if first != f"{sc.path}:{sc.line}":
                loaded.errors.append(CaseError(sc.path, sc.lines.get(("id",), sc.line), "id",
                                                    f"duplicate case id {sc.case.id!r} (also at {first})"))
                p.cells = [c for c in p.cells if c.source is not sc]
        for err in sorted(loaded.errors + call_problems(loaded.rejected, registry.load()) + p.errors,
                          key=lambda e: e.line):
            yield CaseErrorItem.from_parent(self, name=f"line {err.line}: {err.field or 'file'}", error=err)
        for cell in p.cells:
            yield CellItem.from_parent(self, name=cell.id, cell=cell)


class CaseErrorItem(pytest.Item):
    """A case-file problem is a failing item: the rest of the file and suite still run."""

    def __init__(self, *, error, **kw):
        super().__init__(**kw)
        self.add_marker("conformance")
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
        self.add_marker("conformance")
        self.cell = cell
        self.extra_keyword_matches.update(cell.case.tags)  # `pytest -k seed` selects by tag

    def runtest(self):
        state = self.config._conformance
        rec = state.runner.run(self.cell)
        self.user_properties.append(("conformance", rec))
        status = rec["status"]
        if status == "skipped" and rec["backend"] in state.required and rec["backend"] in state.runner.unavailable:
            raise CellFailure({**rec, "message": f"required backend {rec['backend']} did not start: {rec['message']}"})
        if status in ("skipped", "unsupported"):
            pytest.skip(f"{status}: {rec['message']}")
        if status in PROBLEMS or (status == "known" and state.strict):
            raise CellFailure(rec)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CellFailure):
            return format_failure(excinfo.value.record)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        # not the bare id: pytest's terminal writes a domain that ends the node id with its
        # dots as "::" (a Python path), and `clip-0.1[...]` could then not be pasted back
        return self.path, self.cell.source.line - 1, f"case {self.cell.id}"


def format_failure(r: dict) -> str:
    status = r["status"].upper() + (" (failed by --conformance-strict)" if r["status"] == "known" else "")
    lines = [f"{status}: {r['api']} ({r['backend']}, {r['dtype']}, {r['device']}) "
             f"against the oracle of {r['source_api']}",
             f"case file: {r['path']}", ""]
    if r["status"] == "known":
        lines.append(f"declared difference {r['difference']}: {r['message']}")
    else:
        lines.append(r["message"] or "(no message)")
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
                _seen_backend(rec)
            if rec["status"] == "known":
                _known[rec["difference"]].append(rec["id"])


_writer = None
_known: dict = defaultdict(list)  # difference id -> known cell ids (the terminal summary)
_versions: dict = {}  # backend -> {"version", "devices"}: the results file's ``backends``


def _seen_backend(rec: dict) -> None:
    """Note the backend version and device of a record that ran (the writer keeps no records)."""
    if rec.get("backend_version"):
        b = _versions.setdefault(rec["backend"], {"version": rec["backend_version"], "devices": []})
        if rec["status"] not in ("skipped",) and rec["device"] not in b["devices"]:
            b["devices"].append(rec["device"])


def pytest_terminal_summary(terminalreporter):
    """The known cells, by declared difference: what passes only because it is declared."""
    if not _known:
        return
    strict = terminalreporter.config._conformance.strict
    total = sum(map(len, _known.values()))
    terminalreporter.section("conformance: known differences")
    terminalreporter.write_line(f"{total} cells differ from the source's semantics by a declared difference"
                                + (" (failed: --conformance-strict)" if strict else
                                   " (they pass; --conformance-strict fails them)"))
    for diff, ids in sorted(_known.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        more = f", ... ({len(ids) - 2} more)" if len(ids) > 2 else ""
        terminalreporter.write_line(f"  {len(ids):6d}  {diff}: {', '.join(ids[:2])}{more}")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    global _writer
    _writer = getattr(session.config, "_conformance_writer", None)
    _known.clear()
    _versions.clear()


def pytest_sessionfinish(session):
    global _writer
    writer, _writer = _writer, None
    if writer is None:
        return
    writer.set_backends(dict(_versions))
    doc = writer.close()
    report_dir = session.config.getoption("conformance_report")
    if report_dir:
        from . import report

        report.render(doc, report_dir)
