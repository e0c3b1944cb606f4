"""Results JSON: the one interface between running and reporting.

While a run goes on, every finished cell is appended (and flushed) to ``results.jsonl`` next to
``results.json``: line 1 is the header, each further line one cell, so an interrupted run keeps
everything it finished. ``results.json`` (the design's document) is written atomically at the
end, or at any time by ``conformance report`` from the journal. Readers accept either file.
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

SCHEMA = 1


def header(backends: Optional[dict] = None) -> dict:
    return {"schema": SCHEMA, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "suite_version": __version__,
            "machine": {"host": socket.gethostname(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "backends": dict(backends or {})}


class Writer:
    """Thread-safe incremental writer of one results document."""

    def __init__(self, path, backends: Optional[dict] = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.journal = self.path.with_suffix(".jsonl")
        self.doc = header(backends)
        self.doc["results"] = []
        self._lock = threading.Lock()
        self._fh = open(self.journal, "w", encoding="utf-8")
        self._line({k: v for k, v in self.doc.items() if k != "results"})

    def _line(self, obj: dict) -> None:
        self._fh.write(json.dumps(obj) + "\n")
        self._fh.flush()

    def add(self, record: dict) -> None:
        with self._lock:
            self.doc["results"].append(record)
            self._line(record)

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
            results.append(rs[0])
        else:
            seen = ", ".join(f"{r.get('host')}: {r.get('status')}" for r in rs)
            for r in rs:
                results.append(dict(r, conflict=f"different outcomes across runs ({seen})"))
    out["results"] = results
    return out
