"""Results JSON: the one interface between running and reporting.

While a run goes on, every finished cell is appended (and flushed) to ``results.jsonl`` next to
``results.json``: line 1 is the header, each further line one cell, so an interrupted run keeps
everything it finished. ``results.json`` (the design's document) is written atomically at the
end, or at any time by ``conformance report`` from the journal. Readers accept either file.

Schema 2 (schema-1 documents still load and render) adds, besides the cell records:
- ``cases``: case id -> case-level facts, stored once per case rather than per cell (title,
  ``path``, tags, ``inputs`` summary, ``snippets``: target API -> reproduction). A runner hands
  them over as a record's ``case_info``; :class:`Writer` moves them here (in the journal they
  stay on the record's line, and :func:`load` moves them).
- ``registry``: a snapshot of the API-mapping registry (``Registry.snapshot()``), so the report's
  mapping page needs nothing but results.
- per cell: ``params`` (per-parameter shape, max abs/rel error, mismatched, clipping factor),
  ``total_norm`` {got, want}, ``factor`` {got, want} (||clipped|| / ||raw||).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import threading
from pathlib import Path
from typing import Iterable, Optional

from . import __version__

SCHEMA = 2


def merge_case_info(cases: dict, case_id: str, info: dict) -> None:
    """Fold one record's ``case_info`` into a ``cases`` map (snippets are added, not replaced)."""
    cur = cases.setdefault(case_id, {})
    for key, value in info.items():
        if key == "snippets":
            cur.setdefault("snippets", {}).update(value)
        else:
            cur[key] = value


def header(backends: Optional[dict] = None, registry: Optional[dict] = None) -> dict:
    doc = {"schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "suite_version": __version__,
            "machine": {"host": socket.gethostname(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "backends": dict(backends or {})}
    if registry is not None:
        doc["registry"] = registry
    return doc


class Writer:
    """Thread-safe incremental writer of one results document."""

    def __init__(self, path, backends: Optional[dict] = None, registry: Optional[dict] = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.journal = self.path.with_suffix(".jsonl")
        self.doc = header(backends, registry)
        self.doc["cases"] = {}
        self.doc["results"] = []
        self._lock = threading.Lock()
        self._fh = open(self.journal, "w", encoding="utf-8")
        self._line({k: v for k, v in self.doc.items() if k not in ("results", "cases")})

    def _line(self, obj: dict) -> None:
        self._fh.write(json.dumps(obj) + "\n")
        self._fh.flush()

    def add(self, record: dict) -> None:
        """Append one cell. Its ``case_info`` (if any) stays on the journal line (``load``
        moves it) and goes into the document's ``cases`` map."""
        record = dict(record)
        info = record.pop("case_info", None)
        with self._lock:
            if info and record.get("case"):
                merge_case_info(self.doc["cases"], record["case"], info)
                self._line(dict(record, case_info=info))
            else:
                self._line(record)
            self.doc["results"].append(record)

    def set_backends(self, backends: dict) -> None:
        with self._lock:
            self.doc["backends"].update(backends)
            self._line({"backends": backends})

    def close(self) -> dict:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()
            write_json(self.path, self.doc)
        return self.doc


def write_json(path, doc: dict) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def load(path) -> dict:
    """Read ``results.json`` or a ``results.jsonl`` journal (possibly cut short by a crash)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        doc: dict = {"results": []}
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut short by a kill: everything before it stands
                if i == 0:
                    doc.update(obj)
                    doc["results"] = []
                elif "backends" in obj and "status" not in obj:
                    doc.setdefault("backends", {}).update(obj["backends"])
                else:
                    info = obj.pop("case_info", None)
                    if info and obj.get("case"):
                        merge_case_info(doc.setdefault("cases", {}), obj["case"], info)
                    doc["results"].append(obj)
        return doc
    return json.loads(path.read_text(encoding="utf-8"))


def _outcome(r: dict) -> tuple:
    return (r.get("status"), r.get("difference"))


def merge(docs: Iterable[dict]) -> dict:
    """Merge results documents from several runs or machines into one.

    A cell seen in several documents on the same backend/device keeps every outcome: identical
    outcomes collapse into one record, different ones are all kept and marked ``conflict``.
    """
    docs = list(docs)
    if len(docs) == 1:
        return docs[0]
    out = header()
    out["schema"] = max(int(d.get("schema") or 1) for d in docs)
    out["machines"] = [dict(d.get("machine", {}), created=d.get("created")) for d in docs]
    out["backends"] = {}
    by_key: dict = {}
    for d in docs:
        for name, b in (d.get("backends") or {}).items():
            cur = out["backends"].setdefault(name, dict(b, devices=[]))
            cur["devices"] = sorted(set(cur.get("devices", [])) | set(b.get("devices", [])))
        host = (d.get("machine") or {}).get("host")
        for r in d.get("results", []):
            r = dict(r, host=r.get("host", host))
            by_key.setdefault(r.get("id"), []).append(r)
    results = []
    for rid, rs in by_key.items():
        outcomes = {_outcome(r) for r in rs}
        if len(outcomes) == 1:
            hosts = sorted({str(r.get("host")) for r in rs})
            results.append(dict(rs[0], hosts=hosts) if len(rs) > 1 else rs[0])
        else:
            seen = ", ".join(f"{r.get('host')}: {r.get('status')}" for r in rs)
            for r in rs:
                results.append(dict(r, conflict=f"different outcomes across runs ({seen})"))
    out["results"] = results
    out["cases"] = {}
    for d in docs:  # case-level facts: the union (the same case file gives the same facts)
        for cid, info in (d.get("cases") or {}).items():
            merge_case_info(out["cases"], cid, info)
    registries = [d["registry"] for d in docs if d.get("registry")]
    if registries:  # the newest document's registry, by its created stamp
        out["registry"] = max(((d.get("created") or "", i, d["registry"]) for i, d in enumerate(docs)
                               if d.get("registry")))[2]
    return out
