"""``conformance run --repeat N``: is every verdict the same every run?

Each cell runs N times: the first time in plan order, then each time in a freshly started set
of workers and a different shuffled order, so that state an earlier cell leaves in a worker
(flush-to-zero, a cached kernel, a random seed) shows as a cell whose numbers change. A cell's
runs are compared by the digest of everything its worker returned (``digest``); a cell whose
statuses differ, or whose digests differ where no ``varies:`` declaration of the registry says
its numbers may (within the tolerance), is ``unstable`` (a status of its own, failing the run), its message
giving the spread: the statuses seen and the range of its largest relative error. A cell that
a declared gap already calls ``unsupported`` (``undefined: true``: numbers that depend on state
or uninitialised memory) stays so: its instability is declared.
"""

from __future__ import annotations

import hashlib
import math
import random

import numpy as np


def digest(result) -> str:
    """A digest of a worker's result: every array's dtype, shape and bytes, every number's repr."""
    h = hashlib.sha1()

    def feed(x):
        if isinstance(x, dict):
            for k in sorted(x, key=str):
                h.update(repr(k).encode())
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(b"[")
            for v in x:
                feed(v)
            h.update(b"]")
        elif isinstance(x, np.ndarray):
            h.update(f"{x.dtype.str}{x.shape}".encode())
            h.update(np.ascontiguousarray(x).tobytes())
        else:
            h.update(repr(x).encode())

    feed({k: v for k, v in result.items() if k != "elapsed"} if isinstance(result, dict) else result)
    return h.hexdigest()[:16]


def orders(cells: list, times: int, seed: int = 0) -> list:
    """The order of each run: plan order first, then a shuffle per run (seeded: reproducible)."""
    out = [list(cells)]
    for k in range(1, times):
        again = list(cells)
        random.Random(seed * 1000 + k).shuffle(again)
        out.append(again)
    return out


def combine(runs: list) -> list:
    """One record per cell from its records of every run (``runs``: a list of records per run):
    the first run's record, made ``unstable`` where the runs disagree."""
    by_id: dict = {}
    for records in runs:
        for rec in records:
            by_id.setdefault(rec["id"], []).append(rec)
    out = []
    for recs in by_id.values():
        first = dict(recs[0])
        statuses = [r["status"] for r in recs]
        digests = {r.get("digest") for r in recs}
        first["repeat"] = {"runs": len(recs), "statuses": statuses, "digests": len(digests)}
        if len(set(statuses)) == 1 and len(digests) > 1 and first.get("varies"):
            first["message"] = "; ".join(filter(None, [first["message"], f"its numbers varied between {len(recs)} "
                                                       f"runs, the verdict did not (declared: {first['varies']})"]))
        elif (len(digests) > 1 or len(set(statuses)) > 1) and first["status"] not in ("unsupported", "skipped"):
            errs = [r.get("max_rel_err") for r in recs if isinstance(r.get("max_rel_err"), (int, float))]
            errs = [e for e in errs if not math.isnan(e)]
            spread = f"max rel err {min(errs):.3g} .. {max(errs):.3g}" if errs else "no numbers to compare"
            first.update(status="unstable", difference=None,
                         message=(f"the numbers differ between {len(recs)} runs (statuses {', '.join(statuses)}; "
                                  f"{len(digests)} different results; {spread}); first run: {recs[0]['message']}"))
        out.append(first)
    return out
