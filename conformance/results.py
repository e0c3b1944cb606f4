"""Results JSON: the one interface between running and reporting.

While a run goes on, every finished cell is appended (and flushed) to ``results.jsonl`` next to
``results.json``: line 1 is the header, each further line one cell, so an interrupted run keeps
everything it finished. ``results.json`` (the design's document) is written atomically at the
end, or at any time by ``conformance report`` from the journal. Readers accept either file.
The two carry the same records, so a run keeps one of them: a run that finished every planned
cell removes its journal once ``results.json`` is on disk; an unfinished one keeps the journal
(what ``--resume`` continues, and what a crash leaves). ``--resume`` of a finished folder reads
``results.json`` and starts a journal from it.

Schema 2 (schema-1 documents still load and render) adds, besides the cell records:
- ``cases``: case id -> case-level facts, stored once per case rather than per cell (title,
  ``path``, tags, ``inputs`` summary, ``snippets``: target API -> reproduction). A runner hands
  them over as a record's ``case_info``; :class:`Writer` moves them here (in the journal they
  go on a line of their own before the record's, and :func:`load` moves them).
- ``registry``: a snapshot of the API-mapping registry (``Registry.snapshot()``), so the report's
  mapping page needs nothing but results.
- per cell: ``params`` (per-parameter shape, max abs/rel error, mismatched, clipping factor),
  ``total_norm`` {got, want}, ``factor`` {got, want} (||clipped|| / ||raw||).

Schema 3 (schemas 1 and 2 still load, render and diff) adds per cell ``key``, the stable key
``conformance diff`` matches cells on (``plan.cell_key``; older records: backend and id), and,
where they apply, ``required: agree`` with ``declared`` (docs/expect.md). CHANGELOG.md lists the
changes of each schema and case-file format.

Schema 4 (schemas 1 to 3 still load) writes each record without the case fields
(``CASE_FIELDS``: title, tags, path, source API) its case's ``cases`` entry holds; :func:`load`
fills them back in, so readers see whole records.

Schema 5 (schemas 1 to 4 still load) writes each text that records repeat once: a ``message``
that two or more records carry (a reason shared by thousands of unsupported or skipped cells)
is ``{"$str": i}``, an index into the document's ``strings`` list; a ``reproduce`` that is its
case's snippet of the same API but for its leading comment lines (the cell it names) is
``{"$snippet": api, "head": those lines}``; a record whose ``id`` and ``key`` are what its
fields spell (``cellids.cell_id``, ``cellids.cell_key``) has ``"$point": label`` (its sweep point's
label) instead of the two. :func:`load` puts all of them back (``_expand``, ``_points``), so
readers see whole records. The journal's record lines are written in the same form
(``Writer``), so ``results.json`` is those lines copied after the document's head.

Files are strict JSON: a non-finite number (a NaN norm, an infinite relative error) is written
as ``{"$float": "nan"}`` (``"inf"``, ``"-inf"``), which :func:`load` reads back as the float;
files written before that (with bare ``NaN`` tokens) still load.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import socket
import threading
from pathlib import Path
from collections import Counter
from typing import Iterable, Optional

from . import __version__, cellids
from .statuses import PROBLEMS

SCHEMA = 5


#: a cell record's fields that are its case's (``cases[case]`` holds them once): written only
#: where they differ from the case's, filled back in by :func:`load`
CASE_FIELDS = ("title", "tags", "path", "source_api")


def _lean(record: dict, cases: dict) -> dict:
    """``record`` without the fields its case's entry in ``cases`` already holds."""
    info = cases.get(record.get("case")) or {}
    return {k: v for k, v in record.items() if not (k in CASE_FIELDS and k in info and info[k] == v)}


#: a message shorter than this is written as it is (a reference would not be shorter)
_INTERN_MIN = 16
STR_KEY, SNIPPET_KEY, POINT_KEY = "$str", "$snippet", "$point"
#: a journal line that adds its text to the strings table
STRING_KEY = "$string"
#: how many problem cells ``Writer.problems`` keeps (the summary shows 20)
PROBLEM_LIMIT = 20


def _spelled(r: dict, label: str) -> tuple:
    """The ``id`` and ``key`` that the plan gives a record of these fields and sweep-point
    ``label`` (``cellids``; a labelled backend, ``paddle@3.0``, shows its label after the API in
    the id and not in the key)."""
    framework, _, version = str(r.get("backend") or "").partition("@")
    mode = r.get("mode") or "eager"
    api, dtype, device = (str(r.get(k) or "") for k in ("api", "dtype", "device"))
    case = str(r.get("case"))
    return (cellids.cell_id(case, api + ("@" + version if version else ""), dtype, device, label, mode),
            cellids.cell_key(framework, case, str(r.get("source_api")), api, device, mode, dtype, label))


def _point(record: dict) -> Optional[str]:
    """The label that gives back ``record``'s id and key exactly (``_spelled``), or None."""
    key = record.get("key")
    if not isinstance(key, str) or not isinstance(record.get("id"), str) or key.count("|") < 7:
        return None
    label = key.split("|", 7)[7]
    return label if _spelled(record, label) == (record["id"], key) else None


def _code_start(text: str) -> int:
    """Where ``text`` starts after its leading comment lines (a snippet's first lines name the
    cell it was written for; the code after them is what two snippets share)."""
    at = 0
    while text.startswith("#", at):
        nl = text.find("\n", at)
        if nl < 0:
            return len(text)
        at = nl + 1
    return at


def _strings(records: list) -> list:
    """The messages that two or more records carry, in first-seen order (the ``strings`` table)."""
    seen = {}
    for r in records:
        m = r.get("message")
        if isinstance(m, str) and len(m) >= _INTERN_MIN:
            seen[m] = seen.get(m, 0) + 1
    return [m for m, n in seen.items() if n > 1]


def _packed(record: dict, index: dict, cases: dict, whole: dict) -> dict:
    """``record`` (lean: ``_lean``; ``whole``: the record as it is) with its repeated message,
    its case snippet's code and its id and key written as references (the schema-5 forms
    ``_expand`` and ``_points`` read); each kept whole where the reference would not give it
    back exactly."""
    out = record
    label = _point(whole)
    if label is not None:
        out = {k: v for k, v in out.items() if k not in ("id", "key")}
        out[POINT_KEY] = label
    m = record.get("message")
    if isinstance(m, str) and m in index:
        out = dict(out, message={STR_KEY: index[m]})
    text, api = record.get("reproduce"), record.get("api")
    snip = ((cases.get(record.get("case")) or {}).get("snippets") or {}).get(api) if isinstance(api, str) else None
    snip = snip.get("text") if isinstance(snip, dict) else None
    if isinstance(text, str) and isinstance(snip, str) and text:
        at = _code_start(text)
        if at < len(text) and text[at:] == snip[_code_start(snip):]:
            out = dict(out, reproduce={SNIPPET_KEY: api, "head": text[:at]})
    return out


def _expand(doc: dict) -> None:
    """Put back what ``_packed`` wrote as references (schema 5). A reference that does not
    resolve (a hand-edited file) reads as a text that says so, never as a crash."""
    strings = doc.pop("strings", None) or []
    cases = doc.get("cases") or {}
    for r in doc.get("results") or []:
        if not isinstance(r, dict):
            continue
        m = r.get("message")
        if isinstance(m, dict) and STR_KEY in m:
            i = m[STR_KEY]
            ok = isinstance(i, int) and 0 <= i < len(strings) and isinstance(strings[i], str)
            r["message"] = strings[i] if ok else "(results file: no string %r in its strings table)" % (i,)
        rep = r.get("reproduce")
        if isinstance(rep, dict) and SNIPPET_KEY in rep:
            snip = ((cases.get(r.get("case")) or {}).get("snippets") or {}).get(rep[SNIPPET_KEY])
            snip = snip.get("text") if isinstance(snip, dict) else None
            head = rep.get("head") if isinstance(rep.get("head"), str) else ""
            r["reproduce"] = (head + snip[_code_start(snip):] if isinstance(snip, str) else
                              "# (results file: no snippet of %s in its case's entry)\n" % (rep[SNIPPET_KEY],))


def _hydrate(doc: dict) -> dict:
    """Fill each record's case fields back in from ``doc["cases"]`` (what :func:`_lean` left out)
    and its references (``_expand``; then its id and key, which need the case fields)."""
    _expand(doc)
    cases = doc.get("cases") or {}
    for r in doc.get("results") or []:
        info = cases.get(r.get("case"))
        if info:
            for k in CASE_FIELDS:
                if k not in r and k in info:
                    r[k] = list(info[k]) if isinstance(info[k], list) else info[k]
        if isinstance(r, dict) and POINT_KEY in r:
            label = r.pop(POINT_KEY)
            cid, key = _spelled(r, label if isinstance(label, str) else str(label))
            r.setdefault("id", cid)
            r.setdefault("key", key)
    return doc


def merge_case_info(cases: dict, case_id: str, info: dict) -> None:
    """Fold one record's ``case_info`` into a ``cases`` map (snippets are added, not replaced)."""
    cur = cases.setdefault(case_id, {})
    for key, value in info.items():
        if key == "snippets":
            cur.setdefault("snippets", {}).update(value)
        else:
            cur[key] = value


def header(backends: Optional[dict] = None, registry: Optional[dict] = None) -> dict:
    doc = {"schema": SCHEMA, "created": _now(),
            "suite_version": __version__,
            "machine": {"host": socket.gethostname(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "backends": dict(backends or {})}
    if registry is not None:
        doc["registry"] = registry
    return doc


class Writer:
    """Thread-safe incremental writer of one results document.

    The journal (``results.jsonl`` beside ``path``) is the one record a run appends: every cell
    is a line there the moment it finishes, and ``close`` derives ``results.json`` from it. The
    writer keeps no record in memory (the 157,550 records of a ``make report`` took 767 MB when it
    did); only the ``cases`` map, which a record's line is written against (``_lean``), the
    strings table, and the tally ``summary`` reads.

    Journal lines are written as ``results.json`` holds its records (``_packed``, schema 5): a
    message is a reference into the strings table from its second record on (the first carries
    it whole and adds it to the table with a ``{"$string": text}`` line), a case's facts go on a
    ``{"case_info": ..., "case": id}`` line of their own. So ``close`` writes ``results.json`` by
    copying the journal's record lines after the document's head, parsing none of them: deriving
    it by reading every record back and encoding it again took 0.08 ms a torch cell, at the end of
    the run (measured on 8,000).

    ``planned``: how many cells the run means to finish; the journal's first line says so, and
    the document records ``planned`` and ``done`` (the report marks a run whose ``done`` falls
    short). ``resume=True`` continues the journal at ``path`` instead of starting a new one: its
    records stay (``earlier``), new ones are appended after a ``resumed`` line.
    """

    def __init__(self, path, backends: Optional[dict] = None, registry: Optional[dict] = None,
                 planned: Optional[int] = None, resume: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.journal = self.path.with_suffix(".jsonl")
        self._lock = threading.Lock()
        self._closed: Optional[dict] = None
        #: (backend, device, status) -> cells, earlier ones included; and the first problems
        self.tally: Counter = Counter()
        self.problems: list = []  # (status, id, message) of the first PROBLEM_LIMIT problem cells
        self._strings: list = []  # the strings table (messages two or more records carry)
        self._index: dict = {}  # message -> its index in ``_strings``
        self._seen: set = set()  # messages met once (the next record carrying one interns it)
        self._lines = 0  # lines written
        self._meta: set = set()  # the numbers of the lines that are not records
        self._top: Optional[dict] = None  # the document's head; None: ``close`` reads the journal
        earlier = _earlier(self.path) if resume else None
        if earlier is not None:
            self.earlier = len(earlier["results"])
            for r in earlier["results"]:
                self._count(r)
            self._cases = earlier.setdefault("cases", {})
            planned = self.earlier + (planned or 0)
            if self.journal.exists():
                _drop_cut_line(self.journal)  # a line a kill cut short would hide what follows it
                self._strings = list(_journal_strings(self.journal))
                self._index = {m: i for i, m in enumerate(self._strings)}
                self._seen = set(self._strings)
                self._fh = open(self.journal, "a", encoding="utf-8")
            else:  # a finished run (its journal removed): the journal starts again from results.json
                self._fh = open(self.journal, "w", encoding="utf-8")
                self._line({k: v for k, v in earlier.items() if k not in ("results", "cases")})
                for case, info in self._cases.items():
                    self._line({"case_info": info, "case": case})
                for r in earlier["results"]:
                    self._record(r, None)
            resumed = {"resumed": _now(), "planned": planned}
            if backends:
                resumed["backends"] = backends
            if registry is not None:
                resumed["registry"] = registry
            self._line(resumed)
        else:
            self.earlier = 0
            self._cases = {}
            head = header(backends, registry)
            if planned is not None:
                head["planned"] = planned
            self._top = head
            self._fh = open(self.journal, "w", encoding="utf-8")
            self._line(head)

    def _line(self, obj: dict, record: bool = False) -> None:
        if not record:
            self._meta.add(self._lines)
        self._lines += 1
        self._fh.write(dumps(obj, separators=(",", ":")) + "\n")
        self._fh.flush()

    def _count(self, r: dict) -> None:
        status = r.get("status")
        self.tally[(r.get("backend"), r.get("device"), status)] += 1
        if status in PROBLEMS and len(self.problems) < PROBLEM_LIMIT:
            self.problems.append((status, r.get("id"), r.get("message") or ""))

    def _intern(self, record: dict) -> None:
        """Make ``record``'s message one the strings table holds, from its second record on."""
        m = record.get("message")
        if not isinstance(m, str) or len(m) < _INTERN_MIN or m in self._index:
            return
        if m not in self._seen:
            self._seen.add(m)
            return
        self._index[m] = len(self._strings)
        self._strings.append(m)
        self._line({STRING_KEY: m})

    def _record(self, record: dict, info: Optional[dict]) -> None:
        if info and record.get("case"):
            merge_case_info(self._cases, record["case"], info)
            self._line({"case_info": info, "case": record["case"]})
        self._intern(record)
        self._line(_packed(_lean(record, self._cases), self._index, self._cases, record), record=True)

    def add(self, record: dict) -> None:
        """Append one cell. Its ``case_info`` (if any) goes on a line of its own before it
        (``load`` moves it into the document's ``cases`` map)."""
        record = dict(record)
        info = record.pop("case_info", None)
        with self._lock:
            self._count(record)
            self._record(record, info)

    def set_backends(self, backends: dict) -> None:
        with self._lock:
            self._line({"backends": backends})
            if self._top is not None:
                self._top.setdefault("backends", {}).update(backends)

    @property
    def done(self) -> int:
        """The cells finished, earlier ones included."""
        return sum(self.tally.values())

    def close(self, records: bool = True) -> dict:
        """Write ``results.json``, the journal's document, and return it; the journal goes once
        every planned cell is in it (the two would hold the same records), and stays for
        ``--resume`` when some are missing. A second ``close`` returns the same document.
        ``records=False``: the document without its ``results`` (nothing is read back; the
        ``tally`` and ``problems`` say what they hold)."""
        with self._lock:
            if self._closed is None:
                self._fh.close()
                if self._top is None:  # a resumed run: the journal holds earlier runs' lines
                    doc = load(self.journal)
                    doc.setdefault("cases", {})
                    doc["done"] = len(doc["results"])
                    write_json(self.path, doc)
                else:
                    doc = dict(self._top, cases=self._cases, done=self.done)
                    self._splice(doc)
                    if records:
                        doc = load(self.path)
                if _shortfall(doc.get("planned"), self.done) is None:
                    self.journal.unlink(missing_ok=True)
                self._closed = doc
        return self._closed

    def _splice(self, top: dict) -> None:
        """``results.json``: ``top`` (with the strings table), then the journal's record lines
        as they are: ``write_json``'s layout, one record per line."""
        top = dict(top)
        if self._strings:
            top["strings"] = self._strings
        head = dumps(top, separators=(",", ":"))
        tmp = Path(str(self.path) + ".tmp")
        with open(self.journal, "rb") as src, open(tmp, "wb") as out:
            out.write(head[:-1].encode("utf-8") + b',"results":[\n')
            sep = b""
            for i, line in enumerate(src):
                if i in self._meta or not line.endswith(b"\n"):
                    continue
                out.write(sep + line[:-1])
                sep = b",\n"
            out.write(b"\n]}\n")
        os.replace(tmp, self.path)


def _journal_strings(journal: Path):
    """The strings table a journal's ``$string`` lines build, in order."""
    prefix = '{"%s":' % STRING_KEY
    with open(journal, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(prefix):
                obj = loads(line)
                if STRING_KEY in obj and "status" not in obj:
                    yield obj[STRING_KEY]


def _drop_cut_line(journal: Path) -> None:
    """Truncate ``journal`` after its last complete, readable line."""
    keep = 0
    with open(journal, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                break
            keep += len(line)
    os.truncate(journal, keep)


def _earlier(path: Path) -> Optional[dict]:
    """What an earlier run into ``path``'s folder finished: its journal if it has one (an
    unfinished or running one), else its ``results.json`` (a finished one), else None."""
    journal = path.with_suffix(".jsonl")
    if journal.exists():
        return load(journal)
    return load(path) if path.exists() else None


def done_ids(path) -> set:
    """The ids of the cells an earlier run into ``path`` (``results.json``; its journal read
    first) has finished: ``--resume`` leaves them out."""
    earlier = _earlier(Path(path).with_suffix(".json"))
    return {r.get("id") for r in earlier["results"]} if earlier else set()


def incomplete(doc: dict) -> Optional[str]:
    """Why a results document is not a whole run (``planned`` cells not all ``done``), or None."""
    if doc.get("incomplete"):  # merged from several documents
        return "; ".join(doc["incomplete"])
    return _shortfall(doc.get("planned"), len(doc.get("results") or []))


def _shortfall(planned, done: int) -> Optional[str]:
    if isinstance(planned, int) and done < planned:
        return f"{done} of {planned} planned cells finished (an interrupted run)"
    return None


class OutputLock:
    """The lock a run holds on its output directory (``.conformance.lock`` in it, an exclusive
    ``flock``), so that two runs never write into one ``--out``: entering it sets ``holder`` to
    None when this run holds the lock, else to who holds it (the lock goes with its process,
    whatever way that ends)."""

    def __init__(self, directory):
        self.path = Path(directory) / ".conformance.lock"
        self.holder: Optional[str] = None
        self._fd: Optional[int] = None

    def __enter__(self) -> "OutputLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.holder = (os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process")
            os.close(fd)
            return self
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {_now()}".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


#: how a non-finite float is spelled in a results file (strict JSON has no NaN or Infinity)
FLOAT_KEY = "$float"


def _strict(value):
    if isinstance(value, float) and not math.isfinite(value):
        return {FLOAT_KEY: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


def _floats(obj: dict):
    """json's object_hook: ``{"$float": "nan"}`` back to the float."""
    if len(obj) == 1 and FLOAT_KEY in obj:
        return float(obj[FLOAT_KEY])
    return obj


def dumps(obj, **kwargs) -> str:
    """Strict JSON of a results document or record (non-finite floats spelled out). Most
    records hold no non-finite float: they are encoded as they are, and only one that the
    encoder refuses is rewritten first (``_strict`` walked every value of every record: 0.03
    ms of a torch cell's 0.47 ms in this process)."""
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:  # "Out of range float values are not JSON compliant"
        return json.dumps(_strict(obj), allow_nan=False, **kwargs)


def loads(text: str):
    return json.loads(text, object_hook=_floats)


def write_json(path, doc: dict) -> None:
    """Compact JSON, one cell record per line (greppable, diffable; a third smaller than an
    indented document), each without the case fields its case's entry holds (``_lean``) and
    with its repeated texts as references (``_packed``, schema 5)."""
    tmp = Path(str(path) + ".tmp")
    compact = dict(separators=(",", ":"))
    cases = doc.get("cases") or {}
    strings = _strings(doc.get("results") or [])
    index = {m: i for i, m in enumerate(strings)}
    packed = [_packed(_lean(r, cases), index, cases, r) for r in doc.get("results") or []]
    top = {k: v for k, v in doc.items() if k not in ("results", "strings")}
    if strings or any(isinstance(r.get("reproduce"), dict) or POINT_KEY in r for r in packed):
        top["schema"] = max(SCHEMA, int(top.get("schema") or 1))  # references: a schema-5 file
        if strings:
            top["strings"] = strings
    head = dumps(top, **compact)
    if "results" in doc:
        records = ",\n".join(dumps(r, **compact) for r in packed)
        head = head[:-1] + ("," if len(head) > 2 else "") + '"results":[\n' + records + "\n]}"
    tmp.write_text(head + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load(path) -> dict:
    """Read ``results.json`` or a ``results.jsonl`` journal (possibly cut short by a crash)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        doc: dict = {"results": []}
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                try:
                    obj = loads(line)
                except json.JSONDecodeError:
                    break  # a line cut short by a kill: everything before it stands
                if i == 0:
                    doc.update(obj)
                    doc["results"] = []
                elif "resumed" in obj and "status" not in obj:  # a run continued (--resume)
                    doc["planned"] = obj.get("planned", doc.get("planned"))
                    doc["backends"] = dict(doc.get("backends") or {}, **(obj.get("backends") or {}))
                    if "registry" in obj:
                        doc["registry"] = obj["registry"]
                elif "backends" in obj and "status" not in obj:
                    doc.setdefault("backends", {}).update(obj["backends"])
                elif STRING_KEY in obj and "status" not in obj:
                    doc.setdefault("strings", []).append(obj[STRING_KEY])
                elif "case_info" in obj and "status" not in obj:
                    if obj.get("case"):
                        merge_case_info(doc.setdefault("cases", {}), obj["case"], obj["case_info"])
                else:
                    info = obj.pop("case_info", None)
                    if info and obj.get("case"):
                        merge_case_info(doc.setdefault("cases", {}), obj["case"], info)
                    doc["results"].append(obj)
        return _hydrate(doc)
    return _hydrate(loads(path.read_text(encoding="utf-8")))


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
    gaps = [f"{(d.get('machine') or {}).get('host', '?')}: {incomplete(d)}" for d in docs if incomplete(d)]
    if gaps:
        out["incomplete"] = gaps
    out["cases"] = {}
    for d in docs:  # case-level facts: the union (the same case file gives the same facts)
        for cid, info in (d.get("cases") or {}).items():
            merge_case_info(out["cases"], cid, info)
    registries = [d["registry"] for d in docs if d.get("registry")]
    if registries:  # the newest document's registry, by its created stamp
        out["registry"] = max(((d.get("created") or "", i, d["registry"]) for i, d in enumerate(docs)
                               if d.get("registry")))[2]
    return out
