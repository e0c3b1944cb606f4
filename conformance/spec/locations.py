"""Where a case file says what: each field's line (``line_map``), and pydantic's validation
errors turned into ``path:line: field: problem`` with "did you mean" suggestions. Also used
for the registry's files."""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, ValidationError

from .models import LAYER_TYPES
from .values import GENERATOR_KEYS


@dataclass
class CaseError:
    path: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.path}:{self.line}: {where}{self.problem}"


class DuplicateKey(Exception):
    """A key given twice in one mapping (PyYAML would keep the last silently); ``args[0]`` is
    the CaseError."""


def line_map(node, path=(), out=None, fname="") -> dict:
    """Map each field path (tuple of keys / indices) to its 1-based line in the file.

    Also rejects duplicate keys, which PyYAML would otherwise silently overwrite.
    """
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)  # a key's own line wins over its block's
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for knode, vnode in node.value:
            key = knode.value
            if key in seen:
                raise DuplicateKey(CaseError(fname, knode.start_mark.line + 1, dotted(path + (key,)),
                                     f"duplicate key (first at line {seen[key]})"))
            seen[key] = knode.start_mark.line + 1
            out[path + (key,)] = knode.start_mark.line + 1
            line_map(vnode, path + (key,), out, fname)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            line_map(item, path + (i,), out, fname)
    return out


def dotted(path) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


def line_of(lines: dict, loc) -> int:
    loc = tuple(loc)
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)


def suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_fields_at(loc, data, root) -> list[str]:
    """Names a misspelt key at ``loc`` could have meant: the fields of the model found there by
    following the type annotations from ``root`` (the case model) along ``loc`` (dict keys, list indices, fields)."""
    ann: Any = root
    node = data
    for part in loc[:-1]:
        node = node[part] if _has(node, part) else None
        ann = _step(ann, part, node)
        if ann is None:
            return []
    if isinstance(node, dict):  # a list of one item written bare (expect:)
        ann = next((typing.get_args(a)[0] for a in _flatten(ann) if typing.get_origin(a) is list), ann)
    model = _pick_model(ann, node)
    return [f.alias or n for n, f in model.model_fields.items()] if model else []


def _step(ann, part, node):
    """The annotation one level down: a model field, a dict value or a list item."""
    model = _pick_model(ann, node if isinstance(part, int) else None)
    for a in _flatten(ann):
        origin = typing.get_origin(a)
        if origin is dict and isinstance(part, str) and (model is None or part not in model.model_fields):
            return typing.get_args(a)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(a)[0]
        if origin is list and isinstance(part, str):  # a list of one item written bare (expect:)
            return _step(typing.get_args(a)[0], part, node)
    if model is not None and isinstance(part, str):
        f = model.model_fields.get(part) or next(
            (x for x in model.model_fields.values() if x.alias == part), None)
        return f.annotation if f else None
    return None


def _flatten(ann) -> list:
    """Unwrap Annotated/Optional/Union into their member annotations."""
    origin = typing.get_origin(ann)
    if origin is Annotated:
        return _flatten(typing.get_args(ann)[0])
    if origin is Union:
        return [m for a in typing.get_args(ann) for m in _flatten(a)]
    return [ann]


def _pick_model(ann, node):
    """The pydantic model among ``ann``'s members that fits ``node`` (layer ``type``, generator key)."""
    models = [a for a in _flatten(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
    if isinstance(node, dict):
        for m in models:
            t = m.model_fields.get("type")
            if t is not None and node.get("type") in typing.get_args(t.annotation):
                return m
            if any(k in node and k in m.model_fields for k in GENERATOR_KEYS):
                return m
    return models[0] if len(models) == 1 else None


def _has(node, part) -> bool:
    return (isinstance(node, dict) and part in node) or (
        isinstance(node, list) and isinstance(part, int) and part < len(node))



def _data_loc(loc, data) -> list:
    """Drop the union tags pydantic inserts into an error location (``grads.w.random.seed``):
    keep only the parts that walk the real data, plus the final (possibly missing) key."""
    out, node = [], data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if _has(node, part):
            nxt = None if last else loc[i + 1]
            if nxt is not None and not _has(node[part], nxt) and _has(node, nxt):
                continue  # a tag that happens to equal a key of the value ({random: normal})
            out.append(part)
            node = node[part]
        elif last and isinstance(node, dict):
            out.append(part)
    return out


def errors_from_validation(exc: ValidationError, path: str, lines: dict, data, root) -> list[CaseError]:
    """pydantic's errors of validating ``data`` as ``root`` (the case model), one CaseError each."""
    out = []
    for err in exc.errors():
        loc = _data_loc(err["loc"], data)
        problem = err["msg"]
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            problem = "unknown field" + suggest(loc[-1], _model_fields_at(loc, data, root))
        elif err["type"] == "missing":
            problem = "required field is missing"
        elif err["type"] == "value_error" and "error" in (err.get("ctx") or {}):
            problem = str(err["ctx"]["error"])
        elif err["type"] == "union_tag_invalid":
            kind = value.get("type") if isinstance(value, dict) else value
            problem = f"unknown layer type {kind!r}" + suggest(str(kind), LAYER_TYPES)
        elif err["type"] == "tensor_value" and isinstance(value, dict):
            hint = next((suggest(k, GENERATOR_KEYS) for k in value if suggest(k, GENERATOR_KEYS)), "")
            problem = f"a generator mapping needs one of the keys random, fill, arange{hint}"
        out.append(CaseError(path, line_of(lines, loc), dotted(loc), problem))
    return out

