"""Two runs side by side: ``conformance diff OLD NEW`` lists every cell whose status,
explanation or numbers changed between two results documents, typically the same cases on two
versions of a framework (docs/upgrade.md).

Cells are matched by their stable key (``key`` in schema-3 records: backend, case, source and
target API, dtype, device, sweep point; built from ``backend`` and ``id`` for older documents),
which leaves out the framework's version and the suite's, so an upgrade does not make every
cell new. Standard library only.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

#: statuses that say the target does what the source does, or why not (a declaration)
EXPLAINED = ("match", "known", "unsupported")
#: the numbers compared between the two runs
NUMBERS = ("max_abs_err", "max_rel_err")


def record_key(rec: dict) -> str:
    """A result record's key across runs and versions (``plan.cell_key`` wrote it)."""
    return rec.get("key") or f"{rec.get('backend')}|{rec.get('id')}"


@dataclass
class Change:
    id: str
    backend: str
    what: str  # "status", "explanation", "numbers", "only in old", "only in new"
    old: Optional[dict]
    new: Optional[dict]
    regression: bool = False

    def line(self) -> str:
        o, n = self.old or {}, self.new or {}
        if self.what == "status":
            text = f"{_outcome(o)} -> {_outcome(n)}"
        elif self.what == "explanation":
            text = f"{_outcome(o)}: {o.get('message') or ''!r} -> {_outcome(n)}: {n.get('message') or ''!r}"
        elif self.what == "numbers":
            text = ", ".join(f"{k} {_num(a)} -> {_num(b)}" for k, a, b in _number_changes(o, n))
        else:
            text = _outcome(o or n)
        return f"{'REGRESSION ' if self.regression else ''}{self.id} [{self.backend}] {self.what}: {text}"


@dataclass
class Diff:
    old_versions: dict
    new_versions: dict
    changes: list = field(default_factory=list)
    unchanged: int = 0

    @property
    def regressions(self) -> list:
        return [c for c in self.changes if c.regression]

    def counts(self) -> dict:
        return dict(Counter(c.what for c in self.changes))


def _explanation(r: dict) -> str:
    """A cell's message without the C++ source locations frameworks put in their errors
    (``(at /paddle/paddle/phi/infermeta/unary.cc:596)``) and without MindSpore's appended
    diagnostics (``---- - C++ Call Stack``, ``- The Traceback of Net Construct Code``, which
    name the run's own files): a moved line or another caller is not a new behaviour."""
    text = re.split(r"\n-{20,}\n- ", r.get("message") or "")[0]
    return re.sub(r"\(at [^()]*:\d+\)", "(at ...)", text).rstrip()


def _outcome(r: dict) -> str:
    return f"{r.get('status')}" + (f" ({r['difference']})" if r.get("difference") else "")


def _num(v) -> str:
    return "-" if v is None else f"{v:.6g}"


def _same_number(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _number_changes(o: dict, n: dict) -> list:
    """``[(name, old, new)]`` for the compared numbers that differ (NaN equals NaN)."""
    pairs = [(k, o.get(k), n.get(k)) for k in NUMBERS]
    pairs.append(("returned norm", (o.get("total_norm") or {}).get("got"), (n.get("total_norm") or {}).get("got")))
    return [(k, a, b) for k, a, b in pairs if not _same_number(a, b)]


def one_side(doc: dict, side: str) -> dict:
    """``doc`` with only the cells of ``side``, ``BACKEND`` or ``BACKEND:MODE``: one side of a
    diff inside one run, between two backends (``--backend paddle@3.0=OLD_PYTHON --backend
    paddle``: their cells share keys) or two modes of one (``torch:eager torch:compiled``: the
    mode is then left out of the keys, so each compiled cell meets its eager one)."""
    backend, _, mode = side.partition(":")
    recs = [r for r in doc.get("results", []) if r.get("backend") == backend
            and (not mode or r.get("mode", "eager") == mode)]
    if mode:
        recs = [{**r, "key": _without_mode(record_key(r))} for r in recs]
    return {**doc, "results": recs,
            "backends": {k: v for k, v in (doc.get("backends") or {}).items() if k == backend}}


def _without_mode(key: str) -> str:
    parts = key.split("|")  # plan.cell_key: backend|case|source|target|device|mode|dtype|sweep
    return "|".join(parts[:5] + ["*"] + parts[6:]) if len(parts) >= 8 else key


def versions(doc: dict) -> dict:
    return {name: b.get("version") for name, b in (doc.get("backends") or {}).items()}


def diff(old: dict, new: dict) -> Diff:
    """The cells that changed from ``old`` to ``new`` (results documents). A regression is a
    cell that matched and no longer does, or that was explained (match, known, unsupported) and
    is now ``mismatch``, ``error`` or ``unstable``; a cell skipped in either run is not compared."""
    a = {record_key(r): r for r in old.get("results", [])}
    b = {record_key(r): r for r in new.get("results", [])}
    out = Diff(versions(old), versions(new))
    for k in sorted(set(a) | set(b)):
        o, n = a.get(k), b.get(k)
        ref = n or o
        if o is None or n is None:
            out.changes.append(Change(ref.get("id"), ref.get("backend"), "only in new" if o is None else "only in old", o, n))
            continue
        if "skipped" in (o.get("status"), n.get("status")):
            out.unchanged += 1
            continue
        if _outcome(o) != _outcome(n):
            regression = (o["status"] == "match") or (o["status"] in EXPLAINED and n["status"] not in EXPLAINED)
            out.changes.append(Change(n.get("id"), n.get("backend"), "status", o, n, regression))
        elif o["status"] == "unsupported" and _explanation(o) != _explanation(n):
            out.changes.append(Change(n.get("id"), n.get("backend"), "explanation", o, n))
        elif _number_changes(o, n):
            out.changes.append(Change(n.get("id"), n.get("backend"), "numbers", o, n))
        else:
            out.unchanged += 1
    return out
