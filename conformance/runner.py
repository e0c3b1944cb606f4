"""Run one cell: skip an unavailable device, let the cell's kind prepare it (inputs, oracle,
worker job), call the backend's worker, classify by the one rule, attach a reproduction snippet.

Main process only: imports numpy, never a framework. What the targets of one case share (its
inputs, the oracle's answers) is cached, bounded, through ``Runner.cached``.
"""

from __future__ import annotations

import time
from typing import Optional

from .classify import classify
from .plan import Cell, cell_key
from .registry import Registry
from .repeat import digest
from .statuses import REPRODUCED
from .worker import BackendError, WorkerError, WorkerPool

#: entries ``Runner.cached`` keeps before it starts again (a case's targets run one after another)
CACHE_LIMIT = 256


class Runner:
    """Runs cells through a WorkerPool. ``unavailable`` maps backend -> reason it is skipped."""

    def __init__(self, registry: Registry, pool: WorkerPool, unavailable: Optional[dict] = None,
                 timeout: float = 120.0):
        self.registry = registry
        self.pool = pool
        self.unavailable = dict(unavailable or {})
        self.timeout = timeout
        self._cache: dict = {}
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
        """``make()``, computed once per ``key`` while it stays in the bounded cache."""
        if key not in self._cache:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = make()
        return self._cache[key]

    def run(self, cell: Cell) -> dict:
        """The steps every kind of cell shares: skip an unavailable device, prepare (the cell's
        kind), call the worker, classify, attach a reproduction snippet."""
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
        try:
            lane = "" if cell.mode == "eager" else cell.mode  # (eager cells: the worker hello() starts)
            timeout = None if self.timeout is None else self.timeout + cell.kind.start_time
            got = self.pool.get(cell.backend, cell.device, lane).call(prepared.job, timeout=timeout, label=cell.id)
        except (WorkerError, BackendError) as e:
            rec.update(status="error", message=f"{type(e).__name__}: {e}")
            rec["reproduce"] = prepared.snippet()
            return self._done(rec, start)
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
