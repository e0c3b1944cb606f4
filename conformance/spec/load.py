"""Loading case files: safe YAML (``yamlsafe``: nothing is evaluated), the case model, and
every problem as a ``path:line: field: problem`` error. One broken file never stops the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from .. import yamlsafe
from .case import Case
from .limits import DEFAULT, Limits
from .locations import CaseError, DuplicateKey, dotted, errors_from_validation, line_map, line_of


@dataclass
class SourceCase:
    case: Case
    path: str
    line: int  # first line of the document
    lines: dict  # field path tuple -> line


@dataclass
class RejectedCall:
    """The call of a case that failed validation (``clip.api`` and ``clip.args`` as written),
    kept so that its API and arguments are checked too: a file shows all its problems at once,
    not one per fix."""

    path: str
    line: int
    lines: dict
    api: str
    args: dict


@dataclass
class LoadResult:
    cases: list[SourceCase] = field(default_factory=list)
    errors: list[CaseError] = field(default_factory=list)
    rejected: list[RejectedCall] = field(default_factory=list)


def parse_text(text: str, path: str = "<string>", limits: Limits = DEFAULT) -> LoadResult:
    """Parse one YAML file (one or more documents) into cases, collecting errors. Nothing a
    file says can exhaust the process: nesting, alias expansion and sizes are bounded by
    ``limits`` before anything recursive walks the document."""
    result = LoadResult()
    too_big = _shape_problem(text, limits)
    if too_big is not None:
        result.errors.append(CaseError(path, too_big[0], "", too_big[1]))
        return result
    try:
        try:
            nodes = list(yaml.compose_all(text, Loader=yamlsafe.LOADER))
        except yaml.YAMLError:  # again with the pure-Python parser: its messages, on any build
            nodes = list(yaml.compose_all(text, Loader=yamlsafe.PY_LOADER))
    except yaml.YAMLError as e:
        result.errors.append(_syntax_error(e, path))
        return result
    if not any(node is not None for node in nodes):
        result.errors.append(CaseError(path, 1, "", "no case in this file (it is empty or only comments)"))
        return result
    for node in nodes:
        if node is None:
            continue
        start = node.start_mark.line + 1
        expanded = _expanded_size(node)
        if expanded > limits.nodes:
            result.errors.append(CaseError(path, start, "", f"the document expands to {expanded} YAML nodes "
                                                            f"(aliases included; limit nodes={limits.nodes})"))
            continue
        try:
            lines = line_map(node, fname=path)
        except DuplicateKey as d:
            result.errors.append(d.args[0])
            continue
        try:
            data = yamlsafe.construct(node)
        except yaml.YAMLError as e:  # e.g. a !!python/... tag: SafeLoader refuses to build it
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            problem = getattr(e, "problem", None) or str(e)
            result.errors.append(CaseError(path, mark.line + 1 if mark else start, "", f"YAML error: {problem}"))
            continue
        if not isinstance(data, dict):
            result.errors.append(CaseError(path, start, "", "a case file must be a mapping"))
            continue
        alias = _call_alias(data, lines)
        if isinstance(alias, CaseError):
            result.errors.append(CaseError(path, alias.line, alias.field, alias.problem))
            continue
        try:
            case = Case.model_validate(data, context={"limits": limits})
        except ValidationError as e:
            result.errors.extend(_aliased(err, alias) for err in errors_from_validation(e, path, lines, data, Case))
            call = _rejected_call(data, path, start, lines)
            if call is not None:
                result.rejected.append(call)
            continue
        problems = case.problems()  # the kind's checks of the whole case
        for loc, problem in problems:
            result.errors.append(CaseError(path, line_of(lines, loc), dotted(loc), problem))
        if not problems:
            result.cases.append(SourceCase(case, path, start, lines))
    return result


def _call_alias(data: dict, lines: dict):
    """``call:`` is a synonym of ``clip:`` (the call under test; clearer for derivation APIs),
    and ``call.args.NAME`` of ``clip.args.NAME`` in ``sweep:``. Renames them in ``data`` and
    ``lines`` so the model sees ``clip``; returns whether the alias was used (errors then say
    ``call``), or a CaseError when both are given."""
    if "call" not in data:
        return False
    if "clip" in data:
        return CaseError("", lines.get(("call",), 1), "call", "give one of `call:` or `clip:`, not both")
    data["clip"] = data.pop("call")
    for loc in [k for k in lines if k[:1] == ("call",)]:
        lines[("clip",) + loc[1:]] = lines[loc]
    sweep = data.get("sweep")
    if isinstance(sweep, dict):
        for key in [k for k in sweep if isinstance(k, str) and k.startswith("call.args.")]:
            new = "clip" + key[len("call"):]
            sweep[new] = sweep.pop(key)
            for loc in [k for k in lines if k[:2] == ("sweep", key)]:
                lines[("sweep", new) + loc[2:]] = lines[loc]
    return True


def _rejected_call(data: dict, path: str, start: int, lines: dict):
    """A ``RejectedCall`` when the document's ``clip:`` is a mapping with a string ``api``."""
    clip = data.get("clip")
    if not isinstance(clip, dict) or not isinstance(clip.get("api"), str):
        return None
    args = clip.get("args") if isinstance(clip.get("args"), dict) else {}
    return RejectedCall(path, start, lines, clip["api"], {k: v for k, v in args.items() if isinstance(k, str)})


def _syntax_error(e: yaml.YAMLError, path: str) -> CaseError:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    return CaseError(path, mark.line + 1 if mark else 1, "", f"YAML syntax error: {problem}")


def _shape_problem(text: str, limits: Limits):
    """``(line, problem)`` when the YAML nests deeper than the limit, else None. Read from the
    parser's events, which (unlike composing) recurse nowhere, so a file nested ten thousand
    deep is a clean error here; a syntax error is left to the composer, which reports it."""
    for loader in (yamlsafe.LOADER, yamlsafe.PY_LOADER):
        depth = 0
        try:
            for event in yaml.parse(text, Loader=loader):
                if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                    depth += 1
                    if depth > limits.depth:
                        return (event.start_mark.line + 1,
                                f"nested more than {limits.depth} levels deep (limit depth={limits.depth})")
                elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                    depth -= 1
            return None
        except yaml.YAMLError:
            continue  # libyaml stops at its own depth limit: read on with the pure-Python parser
    return None


def _expanded_size(root) -> int:
    """Nodes of a composed document once every alias is expanded, counted without expanding
    (an alias is the same node object: each distinct node is sized once)."""
    size: dict = {}
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in size:
            continue
        if isinstance(node, yaml.MappingNode):
            kids = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            kids = list(node.value)
        else:
            kids = []
        if children_done or not kids:
            size[id(node)] = 1 + sum(size.get(id(k), 1) for k in kids)
        else:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
    return size[id(root)]


def read_case_file(path: Path, limits: Limits = DEFAULT):
    """The text of a case file, or a CaseError: not a regular file (a link to /dev/zero, a
    FIFO), larger than the limit, unreadable, or not UTF-8."""
    try:
        if not path.exists():
            return CaseError(str(path), 1, "", "cannot read: no such file")
        if not path.is_file():
            return CaseError(str(path), 1, "", "not a regular file (a device, a FIFO or a link to one)")
        size = path.stat().st_size
        if size > limits.file_bytes:
            return CaseError(str(path), 1, "", f"{size} bytes (limit file_bytes={limits.file_bytes})")
        with open(path, "rb") as fh:
            data = fh.read(limits.file_bytes + 1)
    except OSError as e:
        return CaseError(str(path), 1, "", f"cannot read: {e.strerror or e}")
    if len(data) > limits.file_bytes:
        return CaseError(str(path), 1, "", f"more than {limits.file_bytes} bytes (limit file_bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        return CaseError(str(path), line, "", f"not UTF-8 text (byte {e.start}: {data[e.start:e.start + 1]!r})")


def _aliased(err: CaseError, alias: bool) -> CaseError:
    if alias and (err.field == "clip" or err.field.startswith(("clip.", "clip["))):
        err.field = "call" + err.field[len("clip"):]
    return err


def case_files(paths) -> list[Path]:
    """Expand files and directories (recursively, *.yaml / *.yml) in a stable order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml")))
        else:
            out.append(p)
    return out


def load_paths(paths, limits: Limits = DEFAULT) -> LoadResult:
    """Load every case file under ``paths``; a broken file never stops the others.

    Also reports duplicate case ids across files.
    """
    result = LoadResult()
    seen: dict[str, str] = {}
    for f in case_files(paths):
        text = read_case_file(f, limits)
        if isinstance(text, CaseError):
            result.errors.append(text)
            continue
        one = parse_text(text, str(f), limits)
        result.errors.extend(one.errors)
        result.rejected.extend(one.rejected)
        for sc in one.cases:
            where = f"{sc.path}:{sc.line}"
            if sc.case.id in seen:
                result.errors.append(CaseError(sc.path, sc.lines.get(("id",), sc.line), "id",
                                               f"duplicate case id {sc.case.id!r} (also at {seen[sc.case.id]})"))
                continue
            seen[sc.case.id] = where
            result.cases.append(sc)
    return result

