"""``conformance`` command line: run, validate, list, schema, report.

Exit codes: 0 all cells pass (match/known/unsupported/skipped), 1 a cell is ``mismatch`` or
``error``, 2 usage or case-file errors (the valid cases still run).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import signal
import sys
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import __version__, bundled, frameworks, results, selection, shard
from .statuses import PROBLEMS, STATUSES
from .spec.limits import DEFAULT as DEFAULT_LIMITS

# The registry, the case loader and the planner (pydantic models: 0.3 s of this module's 0.45 s
# import), rich (45 ms) and numpy (50 ms: ``wire``, ``repeat``) are imported where a command
# needs them, so that `run` starts its framework workers first (0.17 s after the interpreter
# started with rich and numpy imported here, 0.07 s without) and their imports overlap these
# (``_run_locked``).


class _Console:
    """A rich ``Console``, made (and rich imported) on first use."""

    def __init__(self, **options):
        self._options, self._console = options, None

    def get(self):
        """The rich ``Console`` itself."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name):
        return getattr(self.get(), name)


console = _Console(highlight=False, soft_wrap=True)
err_console = _Console(stderr=True, highlight=False, soft_wrap=True)
STATUS_STYLE = {"match": "green", "known": "blue", "mismatch": "bold red", "error": "red", "unstable": "magenta",
                "unsupported": "dim", "skipped": "dim"}


def default_cases() -> list[str]:
    """``./cases`` when it exists, else the cases bundled with the package (``bundled``)."""
    here = Path("cases")
    if here.is_dir():
        return [str(here)]
    return [str(bundled.cases_dir())]


def case_paths(a) -> list[str]:
    """The paths a command reads: those given, the bundled cases (``--bundled``), else
    ``default_cases()``; where it chose, it says so on stderr."""
    if getattr(a, "bundled", False):
        if a.paths:
            raise SystemExit(_usage("give case paths or --bundled, not both"))
        chosen = [str(bundled.cases_dir())]
    elif a.paths:
        return list(a.paths)
    else:
        chosen = default_cases()
    err_console.print(f"cases: {chosen[0]}")
    return chosen


def _load(paths, backends_filter=None, device="all", keyword=None, limits=DEFAULT_LIMITS, mode="eager"):
    from . import registry
    from .plan import call_problems, plan
    from .spec import load

    loaded = load.load_paths(paths, limits)
    reg = registry.load()
    p = plan(loaded.cases, reg, backends=backends_filter, device=device, keyword=keyword, limits=limits, mode=mode)
    errors = sorted(loaded.errors + call_problems(loaded.rejected, reg) + p.errors, key=lambda e: (e.path, e.line))
    return loaded, p, errors


def _print_errors(errors) -> None:
    for e in errors:
        err_console.print(str(e), markup=False)


def _usage(message: str) -> int:
    err_console.print(f"error: {message}", markup=False)
    return 2


# --- run ---------------------------------------------------------------------------------------

def cmd_run(a) -> int:
    try:
        limits = DEFAULT_LIMITS.with_overrides(a.limit)
    except ValueError as e:
        return _usage(str(e))
    out = Path(a.out)
    problem = _output_problem(out)
    if problem:
        return _usage(problem)
    pythons, unavailable, problems = frameworks.resolve(a.backend)
    if problems:
        for p in problems:
            err_console.print(f"error: {p}", markup=False)
        return 2
    selected = set(pythons) | set(unavailable) if not a.backend else set(pythons)
    with results.OutputLock(out) as lock:
        if lock.holder is not None:
            return _usage(f"{out} is in use by another run ({lock.holder}); wait for it or use another --out")
        return _run_locked(a, out, limits, pythons, unavailable, selected)


def _warm_rich() -> None:
    """rich's consoles made and its progress bar imported (a run does this while its workers
    import: after them, it delayed the first cell by 20 to 40 ms)."""
    importlib.import_module("rich.progress")
    console.get()
    err_console.get()


def _output_problem(out: Path):
    """Why ``--out`` cannot take a run's files (it is a file, or cannot be written), or None."""
    if out.exists() and not out.is_dir():
        return f"--out {out}: not a directory"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"--out {out}: cannot create it ({e.strerror or e})"
    if not os.access(out, os.W_OK | os.X_OK):
        return f"--out {out}: not writable"
    return None


def _run_locked(a, out: Path, limits, pythons: dict, unavailable: dict, selected: set) -> int:
    from .worker import WorkerError, WorkerPool

    journal = out / "results.jsonl"
    if not a.resume and not a.fresh and journal.exists():
        earlier = results.incomplete(results.load(journal))
        if earlier:
            return _usage(f"{journal} is an unfinished run ({earlier}): --resume continues it, "
                          "--fresh starts over")
    pool = WorkerPool(frameworks.workers(pythons), pythons, recycle=frameworks.recycling(pythons))
    pool.prestart(pythons)  # frameworks import while the registry and the cases load
    from . import registry
    from .runner import Runner

    try:
        runner = Runner(registry.load(), pool, unavailable, timeout=a.timeout)
        try:
            loaded, p, errors = _load(case_paths(a), selected, a.device, a.k, limits, a.mode)
        except ValueError as e:  # a bad -k expression
            return _usage(str(e))
        snapshot = runner.registry.snapshot()  # (9 ms) and rich (45 ms): while the workers import
        _warm_rich()
        for name in sorted(frameworks.requested(a.backend) & set(pythons)):
            try:
                pool.hello(name, "cpu")  # asked for by name: it must start (waited for only now)
            except WorkerError as e:
                return _usage(f"backend {name} ({pythons[name]}) cannot start: {e}")
        _print_errors(errors)
        done = results.done_ids(out / "results.json") if a.resume else set()
        planned = selection.select(p.cells, runner.registry, a.select) if a.select else p.cells
        if a.select:
            console.print(f"--select {a.select}: {len(planned)} of {len(p.cells)} cells", markup=False)
        planned = shard.select(planned, *a.shard) if a.shard else planned
        if a.shard:
            console.print(f"shard {a.shard[0]}/{a.shard[1]}: {len(planned)} of {len(p.cells)} cells", markup=False)
        cells = [c for c in planned if c.id not in done]
        if not p.cells:
            return _usage("no cells to run" + (" (see the errors above)" if errors else
                                               f" (-k {a.k!r} matches none)" if a.k else ""))
        writer = results.Writer(out / "results.json", registry=snapshot,
                                planned=len(cells), resume=a.resume)
        if a.resume:
            console.print(f"resuming {journal}: {writer.earlier} cells done, {len(cells)} to run", markup=False)
        try:
            if a.repeat > 1:
                interrupted = _repeat(cells, runner, writer, pool, a.repeat)
            else:
                interrupted = _execute(cells, runner, writer.add, pool, a.workers)
        finally:
            writer.set_backends(runner.backend_summary())
            doc = writer.close(records=not a.no_report)  # the records are read back for the report only
    finally:
        pool.close()
    if interrupted:
        err_console.print(f"interrupted: {writer.done} of {doc.get('planned')} cells are in {writer.journal}; "
                          "`conformance run --resume` with the same arguments continues", markup=False)
        return 130
    _summary(writer.tally, writer.problems, runner.unavailable)
    if a.no_report:
        console.print(f"results: {out / 'results.json'}   (no report: conformance report {out / 'results.json'})",
                      markup=False)
    else:
        from . import report

        index = report.render(doc, out)
        console.print(f"results: {out / 'results.json'}   report: {index}", markup=False)
    if errors:
        return 2
    return 1 if any(status in PROBLEMS for (_, _, status) in writer.tally) else 0


def _repeat(cells, runner, writer, pool, times: int) -> bool:
    """Every cell ``times`` times (``repeat``): fresh workers and a new order each time; one
    record per cell, ``unstable`` where the runs disagree. Returns whether it was interrupted
    (then the finished cells of the first run are written)."""
    runner.digests = True
    from . import repeat

    runs = []
    for k, order in enumerate(repeat.orders(cells, times)):
        if k:
            pool.close()  # the next run starts fresh workers
        records: list = []
        console.print(f"run {k + 1} of {times}", markup=False)
        if _execute(order, runner, records.append, pool):
            for rec in (runs[0] if runs else records):
                writer.add(rec)
            return True
        runs.append(records)
    for rec in repeat.combine(runs):
        writer.add(rec)
    return False


#: a (backend, device, mode) group gets a second worker, where the cores allow, when the estimated
#: work (``shard.cost_of``) of its dear cells (compiled; a kind that states its cost: distributed)
#: passes this many milliseconds. Cheap cells are not split: their cost is this process's oracle
#: and comparison (about 1 ms a cell, one interpreter for all workers), and a second framework
#: start only adds to it (measured: 8,000 benchmark cells, torch 10.4 s on one worker, 12.1 s on
#: two; Paddle's bundled cells 191 s on one, 140 s on two, the same verdicts)
SPLIT_MS = 60_000.0


def _dear_ms(group: list) -> float:
    return sum(shard.cost_of(c) for c in group if c.mode != "eager" or c.kind.cell_ms is not None)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _lanes(groups: dict, workers=None) -> list:
    """``[(group key, lane, cells)]``: each (backend, device, mode) group on ``workers`` workers
    (lanes "", "2", ...), its whole cases balanced by ``shard.select``. By default 2 where the
    cores outnumber the groups and the group's dear cells pass ``SPLIT_MS`` (Paddle's bundled
    cells alone: its distributed cases are most of its time), else 1: one framework worker per
    group."""
    spare = _cores() // max(1, len(groups))
    out = []
    for key, group in groups.items():
        n = workers or (2 if spare >= 2 and _dear_ms(group) > SPLIT_MS else 1)
        n = min(n, len({(str(c.source.path), c.case.id) for c in group}))
        if n <= 1:
            out.append((key, "", group))
            continue
        for k in range(1, n + 1):
            part = shard.select(group, k, n)
            if part:
                out.append((key, "" if k == 1 else str(k), part))
    return out


def _execute(cells, runner, add, pool, workers=None) -> bool:
    """One thread per (backend, device, mode) so frameworks and their modes run side by side;
    each drives its own worker, so a slow or hanging framework never holds up the others, and a
    framework's compiled cells (the slowest: a compile per new call) do not wait for its eager ones.
    A group may get two threads and workers where the cores allow (``_lanes``). Ctrl-C (or SIGTERM) stops
    the run within about a second: the workers are killed, the cells they were on are dropped
    (not recorded as errors), everything finished is already in the journal. Returns whether
    the run was interrupted."""
    groups = defaultdict(list)
    for c in cells:
        groups[(c.backend, c.device, c.mode)].append(c)
    lanes = _lanes(groups, workers)
    lock = threading.Lock()
    stop = threading.Event()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    show = console.is_terminal
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console.get(), disable=not show)

    def work(key, lane, group, task):
        for rec in runner.stream(group, stop, lane):  # the worker runs one cell while this classifies the last
            if stop.is_set():
                return  # the worker was killed under this cell: not a result
            with lock:
                add(rec)
                progress.advance(task)
                if rec["status"] in PROBLEMS and not show:
                    console.print(f"{rec['status'].upper()} {rec['id']}: {rec['message'][:300]}", markup=False)

    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if threading.current_thread() is threading.main_thread() else None
    ex = ThreadPoolExecutor(max_workers=max(1, len(lanes)))
    try:
        with progress:
            tasks = {k: progress.add_task("/".join(k if k[2] != "eager" else k[:2]), total=len(g))
                     for k, g in groups.items()}
            futures = [ex.submit(work, k, lane, g, tasks[k]) for k, lane, g in lanes]
            for f in futures:
                f.result()
        return False
    except KeyboardInterrupt:
        stop.set()
        pool.close(timeout=0.5)  # kills the busy workers at once: their cells end now
        return True
    finally:
        ex.shutdown(wait=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _summary(tally: Counter, problems: list, unavailable: dict = None) -> None:
    """The cells per backend/device and status (``Writer.tally``), and the first problem cells
    (``Writer.problems``: status, id, message)."""
    from rich.table import Table

    table = Table(title="conformance summary")
    table.add_column("backend/device")
    for s in STATUSES:
        table.add_column(s, justify="right", style=STATUS_STYLE[s])
    rows = defaultdict(Counter)
    for (backend, device, status), n in tally.items():
        rows[f"{backend}/{device}"][status] += n
    for key in sorted(rows):
        table.add_row(key, *(str(rows[key][s]) for s in STATUSES))
    console.print(table)
    for status, cid, message in problems[:20]:
        console.print(f"[{STATUS_STYLE[status]}]{status}[/] ", end="")
        console.print(f"{cid}: {message[:500]}", markup=False)
    bad = sum(n for (_, _, status), n in tally.items() if status in PROBLEMS)
    if bad > 20:
        console.print(f"... and {bad - 20} more in the report")
    for name, reason in sorted((unavailable or {}).items()):
        console.print(f"skipped backend {name}: {reason}", markup=False)


# --- validate / list / schema / report ---------------------------------------------------------

def cmd_validate(a) -> int:
    try:
        limits = DEFAULT_LIMITS.with_overrides(a.limit)
    except ValueError as e:
        return _usage(str(e))
    paths = case_paths(a)
    loaded, p, errors = _load(paths, limits=limits)
    _print_errors(errors)
    from .spec import load

    files = len(load.case_files(paths))
    ready = len({id(c.source) for c in p.cells})  # cases that plan into at least one cell

    def n(k: int, word: str) -> str:
        return f"{k} {word}{'' if k == 1 else 's'}"

    msg = f"{n(files, 'file')}, {n(ready, 'case')} ready to run ({n(len(p.cells), 'cell')})"
    if errors:
        bad = len({e.path for e in errors})
        err_console.print(f"{n(len(errors), 'problem')} in {bad} of the files; {msg}")
        return 2
    console.print(f"ok: {msg}")
    return 0


class _Rows:
    """A listing: a table on a terminal (long names fold, never truncated), tab-separated lines
    with a header when piped (for grep and cut)."""

    def __init__(self, *headers: str):
        self.headers, self.rows = headers, []

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def print(self) -> None:
        if console.is_terminal:
            from rich.table import Table

            t = Table(*self.headers)
            for c in t.columns:
                c.overflow = "fold"
            for r in self.rows:
                t.add_row(*r)
            console.print(t)
            return
        for r in [self.headers, *self.rows]:
            print("\t".join(str(c).replace("\t", " ").replace("\n", " ") for c in r))


def cmd_list(a) -> int:
    if a.what == "cases":
        loaded, p, errors = _load(case_paths(a))
        _print_errors(errors)
        per_case = Counter(c.case.id for c in p.cells)
        t = _Rows("id", "cells", "title", "file")
        for sc in loaded.cases:
            t.add_row(sc.case.id, str(per_case[sc.case.id]), sc.case.title, f"{sc.path}:{sc.line}")
        t.print()
    elif a.what == "apis":
        from . import registry

        reg = registry.load()
        t = _Rows("source API", "target API", "category")
        for m in reg.mappings:
            t.add_row(m.source, m.target, m.category)
        t.print()
    else:
        pythons, unavailable, _ = frameworks.resolve(None)
        t = _Rows("backend", "status", "interpreter", "version", "devices")
        from .worker import WorkerError, WorkerPool

        pool = WorkerPool(frameworks.workers(pythons), pythons, recycle=frameworks.recycling(pythons))
        try:
            for name in sorted(set(pythons) | set(unavailable)):
                if name not in pythons:
                    t.add_row(name, "unavailable", "", "", unavailable[name])
                    continue
                try:
                    info = pool.hello(name, "cpu").get("info", {})
                except WorkerError as e:
                    t.add_row(name, "broken", pythons[name], "", str(e)[:200])
                    continue
                devs = ", ".join(f"{d}" if why is None else f"{d}: {why}" for d, why in info.get("devices", {}).items())
                t.add_row(name, "ok", pythons[name], str(info.get("version")), devs)
        finally:
            pool.close()
        t.print()
    return 0


def cmd_schema(a) -> int:
    from .spec import schema

    text = json.dumps(schema.json_schema(), indent=2)
    if a.out:
        Path(a.out).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


def cmd_diff(a) -> int:
    from .diff import diff, one_side

    if a.new is None and not a.between:
        return _usage("diff: give two results files, or one run's file and --between OLD_BACKEND NEW_BACKEND")
    try:
        old = results.load(a.old)
        new = results.load(a.new) if a.new else old
    except (OSError, ValueError) as e:
        return _usage(f"cannot read results: {e}")
    if a.between:
        sides = [one_side(old, a.between[0]), one_side(new, a.between[1])]
        for side, doc, b in zip(sides, (old, new), a.between):
            if not side["results"]:
                have = sorted({f"{r.get('backend')}:{r.get('mode', 'eager')}" for r in doc.get("results", [])})
                return _usage(f"--between: no {b} cells in the results (there are: {', '.join(have) or 'none'})")
        old, new = sides
    d = diff(old, new)
    for c in sorted(d.changes, key=lambda c: (not c.regression, c.what, c.id)):
        print(c.line())
    counts = ", ".join(f"{v} {k}" for k, v in d.counts().items()) or "nothing changed"
    old_v = ", ".join(f"{k} {v}" for k, v in sorted(d.old_versions.items()))
    new_v = ", ".join(f"{k} {v}" for k, v in sorted(d.new_versions.items()))
    summary = (f"{old_v or '?'} -> {new_v or '?'}: {counts}; {d.unchanged} cells the same; "
               f"{len(d.regressions)} regressions (cells that matched, or were explained, and no longer are)")
    err_console.print(summary, markup=False)
    if a.html:
        from .report import diffpage

        Path(a.html).write_text(diffpage.render(d, summary), encoding="utf-8")
    return 1 if d.regressions else 0


def cmd_report(a) -> int:
    from . import report

    docs = []
    for path in a.results:
        try:
            docs.append(results.load(path))
        except (OSError, ValueError) as e:
            err_console.print(f"{path}: cannot read results: {e}", markup=False)
            return 2
    index = report.render(results.merge(docs), a.out)
    console.print(f"report: {index}", markup=False)
    return 0


LIMIT_HELP = ("raise a limit on what case files may ask for (repeatable): "
              + ", ".join(f"{k}={v}" for k, v in vars(DEFAULT_LIMITS).items()))


def _shard(text: str) -> tuple:
    try:
        return shard.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1")
    return value


def _seconds(text: str) -> float:
    """``--timeout``: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a timeout is a positive, finite number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="conformance", description=__doc__.split("\n")[0])
    ap.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run cases on backends, write results.json and index.html")
    r.add_argument("paths", nargs="*", help="case files or directories (default: ./cases when it exists, "
                                             "else the bundled cases)")
    r.add_argument("--bundled", action="store_true", help="run the cases bundled with the suite")
    r.add_argument("--backend", action="append", metavar="NAME[@LABEL][=PYTHON]",
                   help="backend to run, optionally with the interpreter of its worker (repeatable); "
                        "NAME@LABEL is a second one of that framework (paddle@3.0=/venv-old/bin/python)")
    r.add_argument("--device", choices=["cpu", "gpu", "all"], default="all")
    r.add_argument("--mode", choices=["eager", "compiled", "all"], default="eager",
                   help="eager cells (default), compiled cells (torch.compile(fullgraph=True), ...: "
                        "docs/modes.md) or both")
    r.add_argument("--out", default="reports", help="output directory (default: reports)")
    r.add_argument("-k", metavar="EXPR", help="only cells whose id matches (pytest -k syntax)")
    r.add_argument("--timeout", type=_seconds, default=120.0, help="seconds one cell may take")
    r.add_argument("--no-report", action="store_true",
                   help="write the results JSON only (render it later with `conformance report`)")
    again = r.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue the journal in --out: run only the cells it has not finished")
    again.add_argument("--fresh", action="store_true",
                       help="start over even where --out holds an unfinished run")
    r.add_argument("--select", choices=list(selection.CHOICES),
                   help="ci: only a deterministic selection of whole cases covering every (framework, API, "
                        "dtype, mode) and every mode-conditioned registry entry (conformance/selection.py)")
    r.add_argument("--shard", type=_shard, metavar="K/N",
                   help="run only shard K of N (whole cases, balanced by measured cell cost): one "
                        "machine's share; `conformance report` of the N results is the whole run's")
    r.add_argument("--workers", type=_count, default=None, metavar="N",
                   help="workers per backend, device and mode (each takes whole cases, balanced by "
                        "measured cell cost); default: 2 where the cores outnumber those groups and a "
                        f"group's compiled or distributed cells' estimated work passes {SPLIT_MS / 1000:g} s, else 1")
    r.add_argument("--repeat", type=_count, default=1, metavar="N",
                   help="run every cell N times (fresh workers, a new order each time); a cell whose "
                        "numbers change is `unstable`")
    r.add_argument("--limit", action="append", metavar="NAME=VALUE", help=LIMIT_HELP)
    r.set_defaults(fn=cmd_run)
    v = sub.add_parser("validate", help="check case files; errors as path:line: field: problem")
    v.add_argument("paths", nargs="*")
    v.add_argument("--bundled", action="store_true", help="validate the cases bundled with the suite")
    v.add_argument("--limit", action="append", metavar="NAME=VALUE", help=LIMIT_HELP)
    v.set_defaults(fn=cmd_validate)
    li = sub.add_parser("list", help="list cases, API mappings or backends")
    li.add_argument("what", choices=["cases", "apis", "backends"])
    li.add_argument("paths", nargs="*")
    li.add_argument("--bundled", action="store_true", help="list the cases bundled with the suite")
    li.set_defaults(fn=cmd_list)
    s = sub.add_parser("schema", help="print the JSON Schema of a case file (the bundled cases carry it as "
                                      "case.schema.json; point `# yaml-language-server: $schema=` at it)")
    s.add_argument("--out", help="write it to this file (e.g. case.schema.json beside your cases)")
    s.set_defaults(fn=cmd_schema)
    df = sub.add_parser("diff", help="cells whose status, explanation or numbers changed between two runs "
                                     "(exit 1 when one that matched no longer does)")
    df.add_argument("old", help="results.json (or .jsonl) of the earlier run")
    df.add_argument("new", nargs="?", help="results.json (or .jsonl) of the later run (omit it with --between: "
                                           "two backends of one run)")
    df.add_argument("--between", nargs=2, metavar=("OLD", "NEW"),
                    help="compare two backends of one run (paddle@3.0 paddle, from --backend "
                         "paddle@3.0=/venv-old/bin/python --backend paddle), or two modes of one "
                         "(torch:eager torch:compiled, from --mode all)")
    df.add_argument("--html", metavar="PATH", help="also write the changes as an HTML page")
    df.set_defaults(fn=cmd_diff)
    rp = sub.add_parser("report", help="render results JSON file(s) into an HTML report")
    rp.add_argument("results", nargs="+", help="results.json or results.jsonl files (merged)")
    rp.add_argument("--out", default="reports")
    rp.set_defaults(fn=cmd_report)
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return a.fn(a)
    except BrokenPipeError:  # `conformance list apis | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if argv is None:
            # the program (not a caller of main([...]), whose objects must stay collectable) is
            # about to exit: what it still holds (the registry, cases, cells) moves out of the
            # cyclic collector's reach, so the interpreter's exit does not collect it (measured:
            # `run` of 2,000 cells ended 0.1 s after main returned, 0.015 s frozen)
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
