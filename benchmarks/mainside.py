"""The suite's own work per cell: main-process CPU time, each backend's answers replayed.

    .tox/unit/bin/python benchmarks/mainside.py [--cells 2000] [--backends torch,paddle]
                                                [--repeat 5] [--profile FILE]

``overhead.py``'s wall-clock ratios move by 10-20 % from run to run on this 2-core VM, so a change
that saves 20 us of a cell's 400 cannot be seen in them. This measures what such a change
changes. Per backend (each whose ``.tox/<name>/bin/python`` exists, or ``--backends``):

1. ``overhead.py``'s generated cases for N cells of that backend are planned, and run once as
   ``conformance run`` runs them (a Runner's stream, one results.Writer), with the real
   framework worker; each call's answer is recorded, in order;
2. the same cells are run ``--repeat`` more times, each with a fresh Runner and Writer, against a
   worker whose backend module (``replay_backend.py``) hands back the recorded answers in order:
   the same jobs cross the same pipe, the same answers come back, and the main process does all
   its usual work (preparing, the oracle, encoding, decoding, judging, the journal) while the
   child does none. Every replayed record must equal the recorded one (timings aside), or the
   benchmark stops.

It prints, per backend, ``main-side CPU <backend>: X ms/cell`` (the main process's CPU time over
the stream, ``time.process_time``, the smallest of the repeats, divided by N) and the wall time of
the same stream per cell; the recorded run's columns show the main process's CPU, the
framework worker's CPU (``/proc/PID/stat``) and the wall time per cell when the real framework
answers: the stream's wall per cell is at least the larger CPU of the two (they overlap on two
cores), and no split of the main side's work across processes makes it less than half their sum
on two cores. ``--profile FILE``: the last repeat runs under cProfile (the stream runs in this
thread), stats to ``FILE.<backend>``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import overhead  # noqa: E402 - the generated cases and the interpreters' paths

from conformance import frameworks, registry, results, wire  # noqa: E402
from conformance.plan import plan  # noqa: E402
from conformance.runner import Runner  # noqa: E402
from conformance.spec import load  # noqa: E402
from conformance.worker import BackendError, Worker, WorkerPool  # noqa: E402

#: record fields that differ between runs by design
TIMINGS = ("elapsed_ms", "worker_ms")


class RecordingWorker(Worker):
    """A framework worker that keeps every answer it returns, in call order, in ``answers``
    (its pool's list)."""

    answers: list

    def call(self, job, timeout, label="", ahead=None):
        try:
            result = super().call(job, timeout, label, ahead)
        except BackendError as e:
            self.answers.append({"error": [e.type, e.message]})
            raise
        self.answers.append({"result": result})
        return result


class RecordingPool(WorkerPool):
    """A WorkerPool of RecordingWorkers sharing one list of answers."""

    worker_class = RecordingWorker

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answers: list = []

    def get(self, backend, device, lane=""):
        worker = super().get(backend, device, lane)
        worker.answers = self.answers
        return worker


def worker_cpu(pid: int) -> float:
    """The CPU seconds process ``pid`` has used (Linux ``/proc/PID/stat``: utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stream(cells, reg, pool) -> tuple:
    """(records, main CPU s, wall s, worker CPU s): the cells through one Runner and Writer, as
    ``conformance run`` streams them (one thread, the journal written as records come)."""
    runner = Runner(reg, pool)
    with tempfile.TemporaryDirectory(prefix="conformance-mainside-") as tmp:
        writer = results.Writer(Path(tmp) / "results.json", registry=reg.snapshot(), planned=len(cells))
        runner.device_reason(cells[0].backend, "cpu")  # the worker's start is not the cells' work
        pid = pool.get(cells[0].backend, "cpu").pid
        records = []
        child, cpu, wall = worker_cpu(pid), time.process_time(), time.perf_counter()
        for rec in runner.stream(cells):
            writer.add(rec)
            records.append(rec)
        cpu, wall, child = time.process_time() - cpu, time.perf_counter() - wall, worker_cpu(pid) - child
        writer.close(records=False)
    return records, cpu, wall, child


def comparable(rec: dict) -> str:
    return json.dumps({k: v for k, v in rec.items() if k not in TIMINGS}, sort_keys=True, default=str)


def measure(backend: str, n: int, repeat: int, tmp: Path, profile: str | None) -> dict:
    cases = tmp / backend
    overhead.write_cases(cases, backend, n)
    loaded = load.load_paths([str(cases)])
    reg = registry.load()
    cells = plan(loaded.cases, reg, backends={backend}, device="cpu").cells
    if len(cells) != n:
        sys.exit(f"{backend}: planned {len(cells)} cells, not {n}")
    python = str(overhead.python_of(backend))
    pool = RecordingPool(frameworks.workers([backend]), {backend: python})
    with pool:
        recorded, real_cpu, real_wall, real_worker = stream(cells, reg, pool)
        info = pool.hello(backend, "cpu")["info"]
    replay_file = tmp / f"{backend}.replay"
    replay_file.write_bytes(wire.encode({"backend": backend, "info": info, "answers": pool.answers}))
    want = [comparable(r) for r in recorded]
    cpus, walls = [], []
    for k in range(repeat):
        replay = WorkerPool({backend: "replay_backend"}, {backend: sys.executable}, paths=(str(HERE),),
                            env={"REPLAY_FILE": str(replay_file)})
        with replay:
            if profile and k == repeat - 1:
                import cProfile

                prof = cProfile.Profile()
                records, cpu, wall, _ = prof.runcall(stream, cells, reg, replay)
                prof.dump_stats(f"{profile}.{backend}")
            else:
                records, cpu, wall, _ = stream(cells, reg, replay)
        bad = [r["id"] for r, w in zip(records, want) if comparable(r) != w]
        if len(records) != len(want) or bad:
            sys.exit(f"{backend}: the replayed run's records differ from the recorded run's "
                     f"({len(records)} vs {len(want)} records; first differing: {bad[:3]})")
        cpus.append(cpu)
        walls.append(wall)
    return {"cells": n, "cpu": min(cpus), "wall": min(walls), "cpus": cpus, "real_cpu": real_cpu,
            "real_wall": real_wall, "real_worker": real_worker, "statuses": Counter(r["status"] for r in recorded)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=2000, help="cells per backend (default 2000)")
    ap.add_argument("--backends", type=lambda s: [b for b in s.split(",") if b],
                    help=f"comma-separated (default: each of {','.join(overhead.ORDER)} that is built)")
    ap.add_argument("--repeat", type=int, default=5, help="replayed runs per backend (the fastest counts)")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the last replayed run, stats to FILE.<backend>")
    a = ap.parse_args(argv)
    backends = a.backends or [b for b in overhead.ORDER if overhead.python_of(b).exists()]
    missing = [b for b in backends if b not in overhead.APIS or not overhead.python_of(b).exists()]
    if missing or a.repeat < 1:
        ap.error(f"unknown or unbuilt backend(s) {missing}" if missing else "--repeat must be at least 1")
    rows = {}
    with tempfile.TemporaryDirectory(prefix="conformance-mainside-") as tmp:
        for b in backends:
            rows[b] = measure(b, a.cells, a.repeat, Path(tmp), a.profile)
            print(f"... {b}: main CPU {rows[b]['cpu']:.3f} s over {a.cells} cells", file=sys.stderr, flush=True)
    print(f"{'backend':<11} {'cells':>6} {'main CPU ms/cell':>17} {'wall ms/cell':>13} "
          f"{'real: main CPU':>15} {'worker CPU':>11} {'wall':>6}  statuses")
    for b, r in rows.items():
        n = r["cells"]
        print(f"{b:<11} {n:>6} {r['cpu'] / n * 1000:>17.3f} {r['wall'] / n * 1000:>13.3f} "
              f"{r['real_cpu'] / n * 1000:>15.3f} {r['real_worker'] / n * 1000:>11.3f} "
              f"{r['real_wall'] / n * 1000:>6.3f}  "
              + ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items())))
        print(f"{'':<11} replayed CPU s: " + ", ".join(f"{c:.3f}" for c in r["cpus"]))
    for b, r in rows.items():
        print(f"main-side CPU {b}: {r['cpu'] / r['cells'] * 1000:.3f} ms/cell")
    return 0


if __name__ == "__main__":
    sys.exit(main())
