"""The API-mapping knowledge base: APIs, source -> target mappings, declared differences.

The data lives beside each framework, in ``conformance/frameworks/<name>/registry/*.yaml``: its
APIs, and the mappings whose target is one of them. This package loads and checks it (every
problem as ``path:line: field: problem``) and answers questions about it; ``entries`` holds the
models of the entries. Nothing is evaluated.

Checked on load, beyond each entry's own fields: every API belongs to a framework and a kind that
exist (``conformance/frameworks``, ``conformance/kinds``), a source has an oracle function of its
kind, every knob (an API's ``oracle.knobs``, a difference's ``variant``) is a parameter of that
function with a default (its knobs, and the arguments a variant may override: ``norm_type`` for
an L2-only target) or ``raises``, and every mapping joins two registered APIs of one kind.
"""

from __future__ import annotations

import difflib
import inspect
import math
from functools import lru_cache
from pathlib import Path
from typing import Optional

import yaml
from pydantic import ValidationError

from .. import frameworks, kinds, tensors, yamlsafe
from ..spec.locations import CaseError, dotted, errors_from_validation, line_map, line_of, suggest
from .entries import (
    CATEGORIES,
    Api,
    Condition,
    Difference,
    Mapping,
    OracleSpec,
    Param,
    Range,
    RegistryFile,
    TargetGap,
    TargetNumerics,
    TargetVaries,
    Unsupported,
    Varies,
    applies,
)

__all__ = ["CATEGORIES", "Api", "Condition", "Difference", "Mapping", "OracleSpec", "Param", "Range",
           "Registry", "RegistryError", "Unsupported", "applies", "load"]


class RegistryError(ValueError):
    """The registry's files do not load: ``problems`` are ``path:line: field: problem`` lines."""

    def __init__(self, problems: list):
        self.problems = [str(p) for p in problems]
        super().__init__("the registry does not load:\n" + "\n".join(self.problems))


class Registry:
    """Every framework's APIs and mappings, checked (``load``)."""

    def __init__(self, apis: dict[str, Api], mappings: list[Mapping], frameworks: Optional[dict] = None):
        self.apis = apis
        self.mappings = mappings
        self.frameworks = dict(frameworks or {})  # name -> display title

    def targets(self, source: str, runnable: bool = True) -> list[Mapping]:
        """The mappings of ``source``; ``runnable`` leaves out the ``missing`` ones."""
        return [m for m in self.mappings
                if m.source == source and not (runnable and m.category == "missing")]

    def sources(self) -> list[str]:
        return list(dict.fromkeys(m.source for m in self.mappings))

    def snapshot(self) -> dict:
        """Plain JSON data of the whole registry, carried in results documents so that the
        report (which reads results only) can render the API-mapping tables."""
        return {"apis": {name: api.model_dump(mode="json") for name, api in self.apis.items()},
                "categories": list(CATEGORIES), "frameworks": dict(self.frameworks),
                # python mode, then _jsonable: mode="json" writes a float inf in a list[Any]
                # condition (`args.norm_type: [.inf]`) as null, and the report then said "None"
                "mappings": [_jsonable(m.model_dump()) for m in self.mappings]}

    def difference(self, diff_id: str) -> Optional[Difference]:
        for m in self.mappings:
            for d in [*m.differences, *m.numerics]:
                if d.id == diff_id:
                    return d
        return None

    def source_args(self, source: str, given: dict) -> tuple[dict, list[str]]:
        """The source call's full arguments (defaults filled) and problems with ``given``."""
        api = self.apis[source]
        problems = []
        for k in given:
            if k not in api.params:
                close = difflib.get_close_matches(k, list(api.params), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{k}: {source} has no argument {k!r}{hint}")
        for k, v in given.items():  # a number where the API takes one (YAML "2.0" is a string)
            wanted = api.params[k].refuses(v) if k in api.params else None
            if wanted:
                problems.append(f"{k}: {source} takes {wanted} for {k!r}, got {v!r}")
        for k, p in api.params.items():
            if p.required and k not in given:
                problems.append(f"{k}: required argument of {source} is missing")
        args = {k: p.default for k, p in api.params.items() if not p.required}
        args.update({k: v for k, v in given.items() if k in api.params})
        return args, problems

    @staticmethod
    def translate(mapping: Mapping, args: dict, target: Optional[Api] = None) -> dict:
        """Source-API arguments -> target-API arguments, by the mapping's declarative rules:
        ``"p"`` (the source's ``p``), ``{from: p, op: neg | int}``, ``{value: v}``, and
        ``fallback:`` (a rule used where the source's ``p`` is null: ``{from: min, fallback:
        {from: max, op: neg}}`` for a lower bound that defaults to ``-max``). A tensor argument
        (``{tensor: 0.4, dtype: ...}``) stays one where the ``target`` API takes a Tensor for
        that parameter, and becomes its number (rounded to its dtype) where it does not."""
        if mapping.args is None:
            out = dict(args)
        else:
            out = {}
            for target_param, rule in mapping.args.items():
                if isinstance(rule, str) and rule not in args:
                    continue
                out[target_param] = _apply(rule, args, mapping)
        if target is not None:
            numbers = tensors.plain_args(out)
            out = {k: v if (k in target.params and target.params[k].tensor) else numbers[k] for k, v in out.items()}
        return out

    def target_args(self, mapping: Mapping, args: dict) -> dict:
        """``translate`` with the mapping's target API (tensor arguments kept only where it takes them)."""
        return self.translate(mapping, args, self.apis.get(mapping.target))


def _apply(rule, args: dict, mapping: Mapping):
    """One argument rule of ``mapping`` applied to the source call's ``args``."""
    if isinstance(rule, str):
        return args.get(rule)
    if "value" in rule:
        return rule["value"]
    v = args.get(rule["from"])
    if v is None and "fallback" in rule:
        return _apply(rule["fallback"], args, mapping)
    op = rule.get("op", "identity")
    if v is None or op == "identity":
        return v
    if op == "tensor":  # a target that takes this argument only as a Tensor (of the cell's dtype)
        return v if tensors.is_tensor_arg(v) else {"tensor": v}
    if tensors.is_tensor_arg(v):  # the rule applies to the number the tensor holds (0-d or [x])
        inner = v["tensor"]
        x = _apply({**rule, "from": "x"}, {"x": inner[0] if isinstance(inner, list) else inner}, mapping)
        return {**v, "tensor": [x] if isinstance(inner, list) else x}
    if op == "neg":
        return -v
    if op == "int":  # a target that takes an int (an integral float converts; any other value
        # passes unchanged, so the target's own error shows)
        return int(v) if isinstance(v, float) and v.is_integer() else v
    raise ValueError(f"unknown argument op {op!r} in {mapping.source} -> {mapping.target}")


def _jsonable(value):
    """Non-finite floats (``.inf`` in conditions) as strings, so the snapshot is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@lru_cache(maxsize=None)
def load(directory: Optional[str] = None) -> Registry:
    """Load the registry: every framework's ``registry/*.yaml`` (or, for tests, every ``*.yaml``
    in ``directory``). Raises RegistryError naming each problem's file and line."""
    files = sorted(Path(directory).glob("*.yaml")) if directory else frameworks.registry_files()
    found = frameworks.discover()
    apis: dict = {}
    mappings: list = []
    where: dict = {}  # id(entry) -> (path, lines, location) for messages
    problems: list = []
    gaps: list = []  # (TargetGap, origin): the files' gaps of target APIs
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            node = yaml.compose(text, Loader=yamlsafe.LOADER)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            problems.append(CaseError(str(path), mark.line + 1 if mark else 1, "", f"YAML error: {e}"))
            continue
        if node is None:
            continue
        lines = line_map(node, fname=str(path))
        data = yamlsafe.construct(node) or {}
        try:
            f = RegistryFile.model_validate(data)
        except ValidationError as e:
            problems += errors_from_validation(e, str(path), lines, data, RegistryFile)
            continue
        for name, body in f.apis.items():
            loc = ("apis", name)
            if name in apis:
                problems.append(CaseError(str(path), line_of(lines, loc), dotted(loc),
                                          f"API {name} is registered twice (also {where[id(apis[name])][0]})"))
                continue
            try:
                apis[name] = Api(name=name, **body)
            except (ValidationError, TypeError) as e:
                detail = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
                problems.append(CaseError(str(path), line_of(lines, loc), dotted(loc), detail))
                continue
            where[id(apis[name])] = (str(path), lines, loc)
        for i, m in enumerate(f.mappings):
            mappings.append(m)
            where[id(m)] = (str(path), lines, ("mappings", i))
        gaps += [(g, (str(path), lines, ("unsupported", i))) for i, g in enumerate(f.unsupported)]
        gaps += [(g, (str(path), lines, ("varies", i))) for i, g in enumerate(f.varies)]
        gaps += [(g, (str(path), lines, ("numerics", i))) for i, g in enumerate(f.numerics)]
    mappings = _with_target_gaps(mappings, gaps, apis, where, problems)
    for api in apis.values():
        problems += _api_problems(api, found, where[id(api)])
    for m in mappings:
        problems += _mapping_problems(m, apis, where[id(m)])
    if problems:
        raise RegistryError(problems)
    return Registry(apis, mappings, {name: fw.title for name, fw in found.items()})


def _with_target_gaps(mappings: list, gaps: list, apis: dict, where: dict, problems: list) -> list:
    """The mappings with each file-level entry (``unsupported``, ``varies`` or ``numerics``)
    appended to those whose target it names."""
    for gap, origin in gaps:
        for j, name in enumerate(gap.targets):
            if name not in apis:
                problems.append(_at(origin)(f"{name} is not a registered API" + suggest(name, apis), "targets", j))
    out = []
    for m in mappings:
        extra = [Unsupported(**g.model_dump(exclude={"targets"})) for g, _ in gaps
                 if isinstance(g, TargetGap) and m.target in g.targets]
        varies = [Varies(**g.model_dump(exclude={"targets"})) for g, _ in gaps
                  if isinstance(g, TargetVaries) and m.target in g.targets]
        numerics = [Difference(**g.model_dump(exclude={"targets"})) for g, _ in gaps
                    if isinstance(g, TargetNumerics) and m.target in g.targets and _fits(g, m, apis)]
        if extra or varies or numerics:
            new = m.model_copy(update={"unsupported": [*m.unsupported, *extra], "varies": [*m.varies, *varies],
                                       "numerics": [*m.numerics, *numerics]})
            where[id(new)] = where[id(m)]
            m = new
        out.append(m)
    for g, origin in gaps:  # a numerics entry that fits no source onto its targets says nothing
        if not isinstance(g, TargetNumerics):
            continue
        onto = [m for m in mappings if m.target in g.targets]
        if onto and not any(_fits(g, m, apis) for m in onto):
            problems.append(_at(origin)(f"numerics {g.id}: no source mapped onto {', '.join(g.targets)} has an "
                                        f"oracle with the knobs {', '.join(g.variant)}", "variant"))
    return out


def _fits(numerics, m, apis: dict) -> bool:
    """Whether a file-level ``numerics`` entry can join mapping ``m``: its variant's knobs are
    all knobs of the source's oracle. A target's arithmetic (say, sums of squares in the input
    dtype) is modelled by the knobs of the norm oracles; a source whose oracle has no such knob
    (torch's clip_grads_with_norm_ takes a given norm) has nothing for it to change."""
    source = apis.get(m.source)
    return source is not None and _oracle_runs(source) and set(numerics.variant) <= accepted_knobs(source)


def _oracle_runs(api: Api) -> bool:
    """Whether ``api`` has an oracle spec naming a function of its kind's oracle module."""
    return (api.oracle is not None and api.kind in kinds.names()
            and callable(getattr(kinds.oracles()[api.kind], api.oracle.fn, None)))


def _at(origin, *loc):
    path, lines, base = origin
    return lambda problem, *more: CaseError(path, line_of(lines, base + loc + more), dotted(base + loc + more), problem)


def _api_problems(api: Api, found: dict, origin) -> list:
    at = _at(origin)
    out = []
    fw = frameworks.api_framework(api.name)
    if api.framework != fw or fw not in found:
        out.append(at(f"{api.name} must belong to the framework {fw!r}"
                      + ("" if fw in found else f", which has no folder in conformance/frameworks "
                                                f"(known: {', '.join(found)})"), "framework"))
    if api.kind not in kinds.names():
        out.append(at(f"unknown kind {api.kind!r} (known: {', '.join(kinds.names())})", "kind"))
        return out
    out += [at(text, field) for field, text in kinds.kinds()[api.kind].api_problems(api)]
    if api.oracle is not None:
        fn = getattr(kinds.oracles()[api.kind], api.oracle.fn, None)
        if not callable(fn):
            out.append(at(f"the {api.kind} oracle has no function {api.oracle.fn!r}"
                          + suggest(api.oracle.fn, dir(kinds.oracles()[api.kind])), "oracle", "fn"))
            return out
        for knob in api.oracle.knobs:
            if knob not in accepted_knobs(api):
                out.append(at(_knob_problem(api, knob), "oracle", "knobs", knob))
    return out


def _mapping_problems(m: Mapping, apis: dict, origin) -> list:
    at = _at(origin)
    if m.category == "missing":  # the target names only the framework that lacks the API
        return [] if "." not in m.target else [at("a `missing` mapping names only the framework", "target")]
    out = [at(f"{end} is not a registered API" + suggest(end, apis), key)
           for key, end in (("source", m.source), ("target", m.target)) if end not in apis]
    if out:
        return out
    source, target = apis[m.source], apis[m.target]
    if source.oracle is None:
        return [at(f"the source {m.source} has no oracle", "source")]
    if source.kind != target.kind:
        out.append(at(f"{m.source} is a {source.kind} API and {m.target} a {target.kind} API", "target"))
    if not _oracle_runs(source):
        return out  # reported with the API
    for j, d in enumerate(m.differences):
        for knob in d.variant:
            if knob not in accepted_knobs(source):
                out.append(at(_knob_problem(source, knob), "differences", j, "variant", knob))
    for d in m.numerics:
        for knob in d.variant:
            if knob not in accepted_knobs(source):
                out.append(at(f"numerics {d.id} of {m.target}: " + _knob_problem(source, knob)))
    return out


def accepted_knobs(api: Api) -> set:
    """What a variant may set for ``api`` as a source: ``raises`` (the API raises that type
    here, handled by every kind), the knobs its kind applies itself (``Kind.knobs``), and every
    parameter of its oracle function that has a default:
    the knobs, and the arguments a variant may override (``norm_type`` for an L2-only target).
    The parameters without a default are the data the kind passes (gradients, a function)."""
    fn = getattr(kinds.oracles()[api.kind], api.oracle.fn)
    return ({"raises"} | set(kinds.kinds()[api.kind].knobs)
            | {p.name for p in inspect.signature(fn).parameters.values() if p.default is not p.empty})


def _knob_problem(api: Api, knob: str) -> str:
    known = sorted(accepted_knobs(api))
    return (f"{knob!r} is not a knob of {api.name}'s oracle ({api.kind}.{api.oracle.fn})"
            f"{suggest(knob, known)}; it takes: {', '.join(known)}")
