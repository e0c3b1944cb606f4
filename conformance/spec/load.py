"""Loading case files: safe YAML (``yamlsafe``: nothing is evaluated), the case model, and
every problem as a ``path:line: field: problem`` error. One broken file never stops the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from .. import yamlsafe
from .case import Case
from .locations import CaseError, DuplicateKey, dotted, errors_from_validation, line_map, line_of


@dataclass
class SourceCase:
    case: Case
    path: str
    line: int  # first line of the document
    lines: dict  # field path tuple -> line


@dataclass
class LoadResult:
    cases: list[SourceCase] = field(default_factory=list)
    errors: list[CaseError] = field(default_factory=list)


def parse_text(text: str, path: str = "<string>") -> LoadResult:
    """Parse one YAML file (one or more documents) into cases, collecting errors."""
    result = LoadResult()
    try:
        try:
            nodes = list(yaml.compose_all(text, Loader=yamlsafe.LOADER))
        except yaml.YAMLError:  # again with the pure-Python parser: its messages, on any build
            nodes = list(yaml.compose_all(text, Loader=yamlsafe.PY_LOADER))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(e, "problem", None) or str(e)
        result.errors.append(CaseError(path, line, "", f"YAML syntax error: {problem}"))
        return result
    for node in nodes:
        if node is None:
            continue
        try:
            lines = line_map(node, fname=path)
        except DuplicateKey as d:
            result.errors.append(d.args[0])
            continue
        start = node.start_mark.line + 1
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
            case = Case.model_validate(data)
        except ValidationError as e:
            result.errors.extend(_aliased(err, alias) for err in errors_from_validation(e, path, lines, data, Case))
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


def load_paths(paths) -> LoadResult:
    """Load every case file under ``paths``; a broken file never stops the others.

    Also reports duplicate case ids across files.
    """
    result = LoadResult()
    seen: dict[str, str] = {}
    for f in case_files(paths):
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            result.errors.append(CaseError(str(f), 1, "", f"cannot read: {e}"))
            continue
        one = parse_text(text, str(f))
        result.errors.extend(one.errors)
        for sc in one.cases:
            where = f"{sc.path}:{sc.line}"
            if sc.case.id in seen:
                result.errors.append(CaseError(sc.path, sc.lines.get(("id",), sc.line), "id",
                                               f"duplicate case id {sc.case.id!r} (also at {seen[sc.case.id]})"))
                continue
            seen[sc.case.id] = where
            result.cases.append(sc)
    return result

