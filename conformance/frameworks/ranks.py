"""Rank groups for distributed cells (worker side, standard library only; docs/distributed.md).

A framework's ``distributed.py`` runs a distributed cell on ``world_size`` rank processes that
it starts once per world size and reuses: a cell then costs its collectives, not a start. This
module starts and supervises them, whatever the framework; the framework gives the function
each rank runs, ``rank_main(rank, world_size, scratch, conn)``, which joins its collective group
(``scratch``: a fresh folder for a file store), sends ``"ready"``, then answers every job it
receives on ``conn`` with a dict: ``{"raised": {"type", "message"}, ...}`` when the API under
test raised, ``{"failed": text}`` when something outside the call did (setting up the shards, a
peer gone), until the pipe closes. A raise the framework knows left every rank in step (each
raised at the same point before any collective) carries ``"in_step": True``: when every rank's
answer does, the group is kept for the next cell.

Supervision (issue 15: a hung collective is an ``error`` cell, not a hung run): a rank that
raises while its peers wait in a collective leaves them waiting, so once one rank has raised the
others get ``RAISE_GRACE`` seconds, or less where the group has gone quiet (``_asleep``: every
thread of every rank process asleep, no CPU time spent, for ``QUIET`` seconds), then the whole
group is killed and the cell's result is that rank's exception (the lowest such rank: the same
every run); a peer that exits after the raise
(Paddle's gloo aborts a process whose peer left a collective) is its consequence, reported as
pending. A rank that dies before any raise, or fails, or a
group that does not answer within ``CELL_LIMIT`` seconds, is a runner error (raised). After any
of these the group is replaced before the next cell: its collectives may be out of step. A
framework's own collective timeout must be longer than ``CELL_LIMIT``, so that a hang is always
this timeout, never a rank's exception that would read as the API raising.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from typing import Optional
from multiprocessing.connection import wait

#: seconds the other ranks get to answer once one rank has raised
RAISE_GRACE = 3.0
#: seconds a group with a raised rank must stay quiet (``_asleep``) to end its grace early.
#: A quiet group cannot change by itself: the ranks that answered wait for the next job, those
#: that did not sleep in a wait that only a peer's message or the framework's own collective
#: timeout (longer than ``CELL_LIMIT``, see above) ends, and a wake-up shows at once as a thread
#: that is runnable (``R``), even one the kernel has not scheduled yet; so the raised ranks, and
#: the verdict, are those the whole grace would give. Measured: Paddle's 160 distributed cells
#: waited out the grace in 13 of them (a rank raises on an empty shard), 3.5 s each
QUIET = 0.25
#: seconds between two looks at a raised group's processes
_LOOK = 0.05
CELL_LIMIT = 45.0
#: seconds a group has to start where the job does not say (``job["distributed"]["start_limit"]``,
#: the distributed kind's ``start_time``, which the runner adds to its timeout)
START_LIMIT = 300.0
#: failed starts in a row after which the group's next cells are errors at once (with the last
#: start's message), instead of waiting START_LIMIT each: a framework whose group cannot start
#: here (a broken install) costs two starts, not one per cell
START_ATTEMPTS = 2


class RankGroup:
    """``world_size`` processes running ``rank_main`` (see the module doc)."""

    def __init__(self, rank_main, world_size: int, start_limit: Optional[float] = None, preload: tuple = ()):
        self.world_size = world_size
        start_limit = START_LIMIT if start_limit is None else start_limit
        self._dir = tempfile.mkdtemp(prefix="ranks-")
        ctx = _context(preload)
        self.conns, self.procs = [], []
        for rank in range(world_size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=rank_main, args=(rank, world_size, self._dir, child),
                               daemon=True, name=f"rank-{rank}")
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        answers, pending, _ = self._collect(time.monotonic() + start_limit)
        if pending or any(a != "ready" for a in answers.values()):
            self.close()
            raise RuntimeError(f"the {world_size} rank processes did not start within {start_limit:g} s: "
                               + _missing(answers, pending)
                               + "".join(f"; rank {r} failed: {a['failed']}" for r, a in sorted(answers.items())
                                         if isinstance(a, dict) and "failed" in a))

    def alive(self) -> bool:
        return all(p.is_alive() for p in self.procs)

    def call(self, job: dict) -> list:
        """Every rank's answer to ``job``, rank by rank; see the module doc for what raises."""
        for conn in self.conns:
            conn.send(job)
        answers, pending, raised_at = self._collect(time.monotonic() + CELL_LIMIT)
        for r, a in answers.items():  # a death after a peer raised is that raise's consequence
            if isinstance(a, Died) and raised_at is not None and a.at >= raised_at:
                answers[r] = {"pending": f"exited (code {self.procs[r].exitcode}) after a peer raised"}
        died = {r for r, a in answers.items() if isinstance(a, Died)}
        failed = {r: a["failed"] for r, a in answers.items() if isinstance(a, dict) and "failed" in a}
        if died or failed or pending:
            self.close()
        if died or failed:
            what = ["a rank process died: " + ", ".join(f"rank {r} (exit code {self.procs[r].exitcode})"
                                                         for r in sorted(died))] if died else []
            what += [f"rank {r} failed outside the call: {text}" for r, text in sorted(failed.items())]
            raise RuntimeError("; ".join(what))
        if pending and raised_at is None:
            raise TimeoutError(f"no answer within {CELL_LIMIT:g} s from " + _missing(answers, pending))
        for r in sorted(pending):
            answers[r] = {"pending": "still in a collective after a peer raised (killed)"}
        in_step = not pending and all(isinstance(a, dict) and a.get("raised") and a.get("in_step")
                                      for a in answers.values())
        if raised_at is not None and not pending and not in_step:
            self.close()  # a rank raised: the others may have left a collective it did not enter
        return [answers[r] for r in range(self.world_size)]

    def _collect(self, deadline: float):
        """Answers until every rank answered, ``deadline``, or ``RAISE_GRACE`` after a raise:
        ``({rank: answer, or Died where its pipe closed}, {ranks without one}, when one raised)``."""
        answers, pending, raised_at = {}, set(range(self.world_size)), None
        quiet = None  # (the CPU ticks of a raised group found asleep, since when)
        while pending:
            end = deadline if raised_at is None else min(deadline, raised_at + RAISE_GRACE)
            left = max(0.0, end - time.monotonic())
            ready = wait([self.conns[r] for r in pending], timeout=left if raised_at is None else min(left, _LOOK))
            if not ready:
                now = time.monotonic()
                if raised_at is None or now >= end:
                    break
                ticks = _asleep(self.procs)
                if ticks is None or quiet is None or quiet[0] != ticks:
                    quiet = None if ticks is None else (ticks, now)
                elif now - quiet[1] >= QUIET:
                    break  # a quiet group stays so: the grace cannot change the answers
                continue
            for conn in ready:
                rank = self.conns.index(conn)
                pending.discard(rank)
                try:
                    answers[rank] = conn.recv()
                except (EOFError, OSError):
                    answers[rank] = Died(time.monotonic())
                    self.procs[rank].join(timeout=5)
                if isinstance(answers[rank], dict) and answers[rank].get("raised") and raised_at is None:
                    raised_at = time.monotonic()
        return answers, pending, raised_at

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
        for proc in self.procs:
            proc.join(timeout=10)
        for conn in self.conns:
            conn.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _context(preload: tuple):
    """How rank processes start: ``spawn`` (a fresh interpreter that imports the framework, 1 to 2
    s a rank), or, where the framework names modules to ``preload``, a ``forkserver`` that imports
    them once for the worker's life and forks every rank from that state (the framework must be
    safe to fork after its import: the server runs nothing else)."""
    if not preload:
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))  # read when the server starts: the first group's start
    return ctx


def _asleep(procs) -> Optional[tuple]:
    """Each process's CPU time so far in clock ticks, when every thread of every one of
    ``procs`` is asleep (``S``: waiting on a pipe, a socket, a lock; or gone); else None, and
    None where ``/proc`` cannot tell (not Linux: the whole grace is waited)."""
    ticks = []
    for proc in procs:
        try:
            with open(f"/proc/{proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            if not os.path.isdir("/proc/self/task"):
                return None
            ticks.append(-1)  # reaped: it does nothing more
            continue
        except (OSError, IndexError):
            return None
        if fields[0] in ("Z", "X"):
            ticks.append(-1)  # exited
            continue
        try:
            for tid in os.listdir(f"/proc/{proc.pid}/task"):
                with open(f"/proc/{proc.pid}/task/{tid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "S":
                        return None  # running or runnable, in disk I/O, stopped
        except (OSError, IndexError):
            return None  # a thread came or went while it was read: not quiet
        ticks.append(int(fields[11]) + int(fields[12]))  # utime + stime, all its threads
    return tuple(ticks)


def _missing(answers: dict, pending: set) -> str:
    return ", ".join([f"rank {r} (no answer)" for r in sorted(pending)]
                     + [f"rank {r} (pipe closed)" for r, a in sorted(answers.items()) if isinstance(a, Died)])


@dataclass
class Died:
    """A rank whose pipe closed (its process gone), and when that was seen (``time.monotonic``)."""

    at: float


_GROUPS: dict = {}  # (rank_main, world size) -> its RankGroup, kept for the worker's life
_FAILED_STARTS: dict = {}  # (rank_main, world size) -> the messages of its failed starts in a row


def serve(conn, answer) -> None:
    """A rank's loop, once its group is joined: ``"ready"``, then ``answer(job)`` for every job
    until the worker is gone (the process then exits at once: a framework's teardown may wait
    on peers that are gone). An exception out of ``answer`` is something outside the call
    under test (``answer`` reports the call's own as ``raised``): ``{"failed": text}``."""
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            os._exit(0)
        try:
            reply = answer(job)
        except Exception as e:  # setting up the shards, a peer gone: not a behaviour
            reply = {"failed": f"{type(e).__name__}: {e}"}
        conn.send(reply)


def from_rank_0(rank: int, scratch: str, name: str, make) -> str:
    """A value every rank of a group needs and rank 0 makes (a free port, say): rank 0 calls
    ``make()`` and writes its text to the group's ``scratch`` folder (atomically, by rename);
    every rank reads it from there, waiting up to ``START_LIMIT``."""
    path = os.path.join(scratch, name)
    if rank == 0:
        with open(path + ".tmp", "w") as f:
            f.write(str(make()))
        os.replace(path + ".tmp", path)
    deadline = time.monotonic() + START_LIMIT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank 0 never wrote {name}")
        time.sleep(0.02)
    with open(path) as f:
        return f.read()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the framework's server binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group(rank_main, world_size: int):
    """The live group of ``world_size`` ranks running ``rank_main``, or None."""
    found = _GROUPS.get((rank_main, world_size))
    return found if found is not None and found.alive() else None


def close_all() -> None:
    """Stop every rank group this process started (a test's; a worker's go with its process),
    and forget failed starts."""
    _FAILED_STARTS.clear()
    while _GROUPS:
        _GROUPS.popitem()[1].close()


def run(rank_main, job: dict, preload: tuple = ()) -> dict:
    """``job`` on the ``job["distributed"]["world_size"]`` ranks running ``rank_main`` (a group
    started at the first such job, replaced after a failure): ``{"ranks": [each rank's answer],
    "raised": the lowest raising rank's exception, its message prefixed "rank N: ", or None}``.
    ``preload``: modules a forkserver imports once for the ranks (``_context``)."""
    key = (rank_main, job["distributed"]["world_size"])
    group = _GROUPS.get(key)
    if group is None or not group.alive():
        if group is not None:
            group.close()
        failed = _FAILED_STARTS.get(key, [])
        if len(failed) >= START_ATTEMPTS:
            raise RuntimeError(f"not started: the last {len(failed)} starts of this group failed; the last: {failed[-1]}")
        try:
            group = _GROUPS[key] = RankGroup(rank_main, key[1], job["distributed"].get("start_limit"), preload)
        except RuntimeError as e:
            _GROUPS.pop(key, None)
            _FAILED_STARTS[key] = failed + [str(e)]
            raise
        _FAILED_STARTS.pop(key, None)
    answers = group.call(job)
    if not group.alive():  # closed by call() after a raise, a hang or a death
        _GROUPS.pop(key, None)
    raised = next(({"type": a["raised"]["type"], "message": f"rank {r}: {a['raised']['message']}"}
                   for r, a in enumerate(answers) if a.get("raised")), None)
    return {"ranks": answers, "raised": raised}
