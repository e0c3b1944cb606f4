"""Run one cell: skip an unavailable device, let the cell's kind prepare it (inputs, oracle,
worker job), call the backend's worker, classify by the one rule, attach a reproduction snippet.

Main process only: imports numpy, never a framework. What the targets of one case share (its
inputs, the oracle's answers) is cached, bounded, through ``Runner.cached``.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from .classify import classify
from .plan import Cell, cell_key
from .registry import Registry
from .repeat import digest
from .statuses import REPRODUCED
from .worker import BackendError, WorkerError, WorkerPool

#: what ``Runner.cached`` keeps: at most this many entries and this many bytes of arrays, the
#: least recently used dropped first (a case's targets and sweep points run one after another, so
#: a thread's next cells hit its last entries). The bytes bound matters: the model-sized cases'
#: inputs and each oracle answer hold 8.7 MB of float64 apiece (256 entries held 1.07 GB at one
#: point of preparing the bundled eager CPU cells)
CACHE_LIMIT = 256
CACHE_BYTES = 512 * 2**20


def _array_bytes(value, depth: int = 0) -> int:
    """The bytes of the arrays (anything with an integer ``nbytes``) in ``value``, looked for in
    its dicts, lists, tuples and object attributes four levels down: what an input or oracle
    entry holds (an array reached twice counts twice; the rest of an entry is small)."""
    nbytes = getattr(value, "nbytes", None)
    if nbytes is not None:
        return nbytes if isinstance(nbytes, int) else 0
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if depth > 4 or isinstance(value, (str, int, float, type(None))):
        return 0
    if isinstance(value, dict):
        return sum(_array_bytes(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_array_bytes(v, depth + 1) for v in value)
    attrs = getattr(value, "__dict__", None)
    return 0 if attrs is None or isinstance(value, type) else sum(_array_bytes(v, depth + 1) for v in attrs.values())


@dataclass
class _Begun:
    """A prepared cell waiting for (or back from) its worker call."""

    cell: Cell
    rec: dict
    prepared: Any
    seconds: float  # the cell's own time so far (preparing, calling)
    worker_s: Optional[float] = None  # the worker's own time in the call: the framework's work


class Runner:
    """Runs cells through a WorkerPool. ``unavailable`` maps backend -> reason it is skipped."""

    def __init__(self, registry: Registry, pool: WorkerPool, unavailable: Optional[dict] = None,
                 timeout: float = 120.0):
        self.registry = registry
        self.pool = pool
        self.unavailable = dict(unavailable or {})
        self.timeout = timeout
        self._cache: collections.OrderedDict = collections.OrderedDict()  # key -> (value, bytes)
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()  # the run's threads (one per backend) share it
        self.backends: dict = {}  # backend -> {"version", "devices", "python", ...} for results
        self.digests = False  # record a digest of each worker result (``run --repeat`` compares them)
        self._emitted: set = set()  # case-level facts already attached to a record (see _case_info)

    # -- backends -------------------------------------------------------------------------------
    def device_reason(self, backend: str, device: str) -> Optional[str]:
        """None when (backend, device) can run; else why its cells are skipped."""
        if backend in self.unavailable:
            return self.unavailable[backend]
        if backend not in self.pool.modules:
            return f"no {backend} backend in this version of the suite"
        if backend not in self.backends:
            try:
                hello = self.pool.hello(backend, "cpu")
            except WorkerError as e:
                self.unavailable[backend] = f"{backend} worker failed to start: {e}"
                return self.unavailable[backend]
            info = hello.get("info", {})
            self.backends[backend] = {"version": info.get("version"), "build": info.get("build"),
                                      "python": hello.get("executable"),
                                      "python_version": hello.get("python"),
                                      "devices": [d for d, why in info.get("devices", {}).items() if why is None],
                                      "unavailable": {d: why for d, why in info.get("devices", {}).items() if why}}
        return self.backends[backend]["unavailable"].get(device)

    def backend_summary(self) -> dict:
        """The results document's ``backends``: versions of those that ran, reasons for the rest."""
        out = {k: dict(v) for k, v in self.backends.items()}
        for name, reason in self.unavailable.items():
            out.setdefault(name, {"version": None, "devices": [],
                                  "unavailable": {"cpu": reason, "gpu": reason}})
        return out

    # -- one cell -------------------------------------------------------------------------------
    def cached(self, key: tuple, make):
        """``make()``, computed once per ``key`` while it stays in the bounded cache (``CACHE_LIMIT``
        entries, ``CACHE_BYTES`` of arrays, least recently used first out). Two threads asking
        for one missing key may both compute it: the values are pure functions of the key."""
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit[0]
        value = make()
        size = _array_bytes(value)
        with self._cache_lock:
            if key not in self._cache:
                self._cache[key] = (value, size)
                self._cache_bytes += size
            while self._cache and (len(self._cache) > CACHE_LIMIT or self._cache_bytes > CACHE_BYTES):
                _, (_, dropped) = self._cache.popitem(last=False)
                self._cache_bytes -= dropped
        return value

    def run(self, cell: Cell) -> dict:
        """The steps every kind of cell shares: skip an unavailable device, prepare (the cell's
        kind), call the worker, classify, attach a reproduction snippet."""
        begun = self._begin(cell)
        if isinstance(begun, dict):
            return begun
        return self._finish(begun, self._call(begun))

    def stream(self, cells, stop: Optional[threading.Event] = None, lane: str = ""):
        """``run`` of each cell in turn, yielding its record, with the worker kept busy: each call
        sends the next cell's job behind its own (``Worker.call``'s ``ahead``: it waits in the
        worker's pipe), so the worker runs that cell while this thread classifies the one it just
        answered and prepares the one after. The worker sees exactly the jobs ``run`` would send,
        in the same order; a cell whose worker crashed or timed out is an ``error`` as in ``run``,
        and the next call starts a fresh worker. One thread: an earlier version made the calls from
        a helper thread, and its hand-offs cost more than they overlapped once the job went ahead
        through the pipe (2,000 torch cells: 0.77 ms a cell with the helper, 0.65 without).
        ``stop`` set: the stream ends after the record in hand, and no call starts after it (the
        caller kills the workers). ``lane``: a name for a worker of its own (two streams of one
        backend, device and mode run side by side on two workers: ``conformance run`` splits a
        backend's cells where cores are free)."""
        pending: collections.deque = collections.deque()  # begun cells and finished records, in order
        calls = 0  # the begun cells in ``pending``
        cells = iter(cells)
        more = True
        while True:
            # prepare until the head's record is ready, or the head is a call and the next call's
            # cell is in hand (its job goes along), or the cells are all prepared
            while more and (not pending or (isinstance(pending[0], _Begun) and calls < 2)):
                cell = next(cells, None)
                if cell is None:
                    more = False
                    break
                pending.append(self._begin(cell))
                calls += isinstance(pending[-1], _Begun)
            if not pending:
                return
            head = pending.popleft()
            if isinstance(head, _Begun):
                calls -= 1
                if stop is not None and stop.is_set():
                    return  # no new call (and no fresh worker) once the run is stopped
                after = next((b for b in pending if isinstance(b, _Begun)), None) if calls else None
                head = self._finish(head, self._call(head, lane, after))
            yield head
            if stop is not None and stop.is_set():
                return

    def _begin(self, cell: Cell):
        """Everything before the worker's call: the finished record of a cell that runs nothing
        (skipped, or its preparation failed), else the ``_Begun`` the call and ``_finish`` take."""
        start = time.perf_counter()
        rec = self._record(cell)
        reason = self.device_reason(cell.backend, cell.device)
        if reason:
            self._case_info(cell, rec, None)
            rec.update(status="skipped", message=reason)
            return self._done(rec, start)
        rec["backend_version"] = self.backends[cell.backend]["version"]
        try:
            prepared = cell.kind.prepare(self, cell)
        except Exception as e:  # a suite bug or an impossible case: never silently passes
            self._case_info(cell, rec, None)
            rec.update(status="error", message=f"preparing inputs/oracle failed: {type(e).__name__}: {e}")
            return self._done(rec, start)
        self._case_info(cell, rec, prepared)
        return _Begun(cell, rec, prepared, time.perf_counter() - start)

    def _worker(self, cell: Cell, lane: str = ""):
        # each mode its own worker (eager cells: the one hello() starts); `lane` another one
        return self.pool.get(cell.backend, cell.device,
                             ("" if cell.mode == "eager" else cell.mode) + (f"#{lane}" if lane else ""))

    def _call(self, begun: "_Begun", lane: str = "", after: Optional["_Begun"] = None):
        """The worker's answer for the cell: its result, or the WorkerError/BackendError it raised.
        ``after``: the cell the next call is for (its job is sent behind this one: ``stream``)."""
        cell = begun.cell
        start = time.perf_counter()
        try:
            timeout = None if self.timeout is None else self.timeout + cell.kind.start_time
            worker = self._worker(cell, lane)
            if after is not None and self._worker(after.cell, lane) is worker:
                got = worker.call(begun.prepared.job, timeout=timeout, label=cell.id, ahead=after.prepared.job)
            else:
                got = worker.call(begun.prepared.job, timeout=timeout, label=cell.id)
            begun.worker_s = getattr(worker, "last_elapsed", None)  # (a test's stand-in may have none)
            return got
        except (WorkerError, BackendError) as e:
            return e
        finally:
            begun.seconds += time.perf_counter() - start

    def _finish(self, begun: "_Begun", got) -> dict:
        """Classify the worker's answer by the one rule and attach a reproduction snippet."""
        cell, rec, prepared = begun.cell, begun.rec, begun.prepared
        start = time.perf_counter() - begun.seconds  # the cell's own time: prepare, call, classify
        if isinstance(got, (WorkerError, BackendError)):
            rec.update(status="error", message=f"{type(got).__name__}: {got}")
            rec["reproduce"] = prepared.snippet()
            return self._done(rec, start)
        if begun.worker_s is not None:  # the framework's work, for the bundled benchmark's ratio
            rec["worker_ms"] = round(begun.worker_s * 1000, 3)
        classify(cell, prepared.want, got, rec, prepared.hooks)
        if self.digests:
            rec["digest"] = digest(got)
            facts = cell.facts()
            varies = next((v.reason for v in cell.mapping.varies if v.applies(facts)), None)
            if varies:
                rec["varies"] = varies
        if rec["status"] in REPRODUCED:
            rec["reproduce"] = prepared.snippet()
        return self._done(rec, start)

    @staticmethod
    def _record(cell: Cell) -> dict:  # noqa: D102 - the record every status starts from
        return {"id": cell.id, "key": cell_key(cell), "case": cell.case.id, "title": cell.case.title,
                "tags": list(cell.case.tags),
                "path": f"{cell.source.path}:{cell.source.line}", "source_api": cell.source_api,
                "api": cell.api, "backend": cell.backend, "device": cell.device, "mode": cell.mode, "dtype": cell.dtype,
                "category": cell.mapping.category, "sweep": cell.variant.sweep, "args": cell.target_args,
                "status": None, "difference": None, "max_abs_err": None, "max_rel_err": None,
                "mismatched": None, "message": ""}

    def _case_info(self, cell: Cell, rec: dict, prepared) -> None:
        """Attach case-level facts to ``rec["case_info"]`` the first time this runner sees them:
        title/path once per case, the input summary once per case, a reproduction snippet once
        per (case, target API). ``results.Writer`` moves them into the document's ``cases`` map,
        so twenty thousand cells do not each carry them."""
        case = cell.case
        info = {}
        if ("case", case.id) not in self._emitted:
            self._emitted.add(("case", case.id))
            label = cell.kind.name if cell.kind.name != "clipping" else ("model" if case.model is not None else "grads")
            info.update(title=case.title, path=f"{cell.source.path}:{cell.source.line}",
                        source=case.source, tags=list(case.tags), source_api=cell.source_api, kind=label,
                        # the source API's arguments but the swept ones (each record has its sweep)
                        args={k: v for k, v in cell.args.items() if k not in (cell.variant.sweep or {})})
            if cell.kind.facts(cell).get("mixed_dtypes"):
                info["mixed_dtypes"] = True
        if prepared is not None and prepared.inputs is not None and ("inputs", case.id) not in self._emitted:
            self._emitted.add(("inputs", case.id))
            info["inputs"] = prepared.inputs()
        if prepared is not None and ("snippet", case.id, cell.api) not in self._emitted:
            self._emitted.add(("snippet", case.id, cell.api))
            info["snippets"] = {cell.api: {"backend": cell.backend, "cell": cell.id, "text": prepared.snippet()}}
        if info:
            rec["case_info"] = info

    @staticmethod
    def _done(rec: dict, start: float) -> dict:
        rec["elapsed_ms"] = round((time.perf_counter() - start) * 1000, 3)
        return rec
