"""``Runner.stream``: the worker's next call (its job sent ahead) overlaps this process's
classification of the last one, and nothing else changes: the same calls in the same order, the same records in the same
order, a failed call an ``error`` record for its cell only, a stop that ends the stream. No
framework: a stub pool stands in for the workers, and the kind's steps are the stub's."""

from __future__ import annotations

import threading
import time

from conformance.runner import Runner, _Begun
from conformance.worker import WorkerError


class _Worker:
    """As ``Worker``: a job sent ``ahead`` starts at once in the "child" (a thread here), and
    the call for that same job only collects its answer."""

    def __init__(self, log: list, fail: set, delay: float):
        self.log, self.fail, self.delay = log, fail, delay
        self.last_elapsed = None
        self._ahead = None  # (job, thread, answer box)

    def _run(self, job, box: list) -> None:
        self.log.append(("call", job["n"], time.perf_counter()))
        time.sleep(self.delay)
        box.append(job["n"] not in self.fail)

    def call(self, job, timeout=None, label="", ahead=None):
        if self._ahead is not None and self._ahead[0] is job:
            _, thread, box = self._ahead
            thread.join()
        else:
            assert self._ahead is None, "a job sent ahead was not asked for"
            box = []
            self._run(job, box)
        self._ahead = None
        if ahead is not None:
            answer: list = []
            thread = threading.Thread(target=self._run, args=(ahead, answer))
            self._ahead = (ahead, thread, answer)
            thread.start()
        if not box[0]:
            raise WorkerError("crash", f"died on {job['n']}", label=label)
        return {"n": job["n"], "twice": 2 * job["n"]}


class _Pool:
    def __init__(self, fail=(), delay=0.0):
        self.log: list = []
        self.worker = _Worker(self.log, set(fail), delay)

    def get(self, backend, device, lane=""):
        return self.worker


class _Prepared:
    def __init__(self, n):
        self.job = {"n": n}

    def snippet(self):
        return f"repro {self.job['n']}"


class _Cell:
    def __init__(self, n, skip=False):
        self.n, self.skip, self.id, self.mode = n, skip, f"cell-{n}", "eager"
        self.backend, self.device = "stub", "cpu"

    class kind:  # noqa: N801 - what Runner._call reads of a cell's kind
        start_time = 0.0


class _Runner(Runner):
    """Runner with the kind's steps replaced: preparing gives the job ``{"n": n}``, finishing
    records what came back (slowly, ``classify_s``, as the oracle and comparison take time)."""

    def __init__(self, pool, classify_s=0.0):
        super().__init__(registry=None, pool=pool, unavailable={})
        self.classify_s = classify_s

    def _begin(self, cell):
        rec = {"id": cell.id, "status": None}
        if cell.skip:
            rec.update(status="skipped", message="not here")
            return rec
        return _Begun(cell, rec, _Prepared(cell.n), 0.0)

    def _finish(self, begun, got):
        self.pool.log.append(("finish start", begun.cell.n, time.perf_counter()))
        time.sleep(self.classify_s)
        rec = begun.rec
        if isinstance(got, WorkerError):
            rec.update(status="error", message=str(got), reproduce=begun.prepared.snippet())
        else:
            rec.update(status="match", got=got["twice"])
        self.pool.log.append(("finish end", begun.cell.n, time.perf_counter()))
        return rec


def _cells():
    return [_Cell(0), _Cell(1), _Cell(2, skip=True), _Cell(3), _Cell(4), _Cell(5)]


def test_the_stream_gives_what_run_gives_in_the_same_order():
    one = _Runner(_Pool(fail={3}))
    by_run = [one.run(c) for c in _cells()]
    two = _Runner(_Pool(fail={3}))
    by_stream = list(two.stream(_cells()))
    assert by_stream == by_run
    assert [r["status"] for r in by_stream] == ["match", "match", "skipped", "error", "match", "match"]
    assert "died on 3" in by_stream[3]["message"] and by_stream[3]["reproduce"] == "repro 3"
    # the worker got the same calls in the same order, one at a time
    assert [n for what, n, _ in two.pool.log if what == "call"] == [0, 1, 3, 4, 5]


def test_the_next_call_runs_while_the_last_result_is_classified():
    pool = _Pool(delay=0.05)
    runner = _Runner(pool, classify_s=0.05)
    start = time.perf_counter()
    recs = list(runner.stream([_Cell(n) for n in range(8)]))
    took = time.perf_counter() - start
    assert [r["got"] for r in recs] == [2 * n for n in range(8)]
    at = {(what, n): t for what, n, t in pool.log}
    for n in range(7):  # call n+1 began before the classification of n ended
        assert at[("call", n + 1)] < at[("finish end", n)]
    # serial would be 8 x (0.05 + 0.05) = 0.8 s; overlapped about 9 x 0.05
    assert took < 0.7, took


def test_a_stop_ends_the_stream_and_no_call_starts_after_it():
    pool = _Pool(delay=0.02)
    runner = _Runner(pool)
    stop = threading.Event()
    got = []
    for rec in runner.stream([_Cell(n) for n in range(50)], stop):
        got.append(rec)
        if len(got) == 3:
            stop.set()
    assert len(got) == 3
    time.sleep(0.1)
    calls = [n for what, n, _ in pool.log if what == "call"]
    assert len(calls) <= 5  # the three recorded, at most the one running and the one queued


def test_the_cache_is_bounded_by_bytes_and_drops_the_least_recently_used(monkeypatch):
    """``Runner.cached``: a value is computed once while it stays; past ``CACHE_BYTES`` of arrays
    the least recently used entries go (the model-sized cases' inputs are 8.7 MB apiece), and
    the value asked for is returned even when it alone passes the bound."""
    import numpy as np

    from conformance import runner as runner_module

    monkeypatch.setattr(runner_module, "CACHE_BYTES", 3 * 8000 + 500)  # three entries
    r = Runner(registry=None, pool=None)
    made = []

    def make(n):
        made.append(n)
        return {"grads": [np.zeros(1000)], "again": None}  # 8,000 bytes

    for n in (1, 2, 3):
        r.cached(("k", n), lambda n=n: make(n))
    r.cached(("k", 1), lambda: make(1))  # a hit: 1 is now the most recently used
    r.cached(("k", 4), lambda: make(4))  # 24,000 + 8,000 bytes: 2 goes, not 1
    assert made == [1, 2, 3, 4]
    r.cached(("k", 1), lambda: make(1))
    r.cached(("k", 2), lambda: make(2))
    assert made == [1, 2, 3, 4, 2]  # 2 came back and pushed 3 out
    r.cached(("k", 3), lambda: make(3))
    assert made == [1, 2, 3, 4, 2, 3]
    big = r.cached(("big",), lambda: {"a": np.zeros(10_000)})  # alone past the bound: not kept
    assert big["a"].size == 10_000
    assert r.cached(("big",), lambda: {"a": np.ones(3)})["a"].size == 3
    r.cached(("k", 2), lambda: make(2))  # it pushed every other entry out on its way
    assert made[-1] == 2
    assert runner_module._array_bytes({"grads": {"w": np.zeros(1000)}, "job": [b"xx", "s", 1.0, None]}) == 8002
