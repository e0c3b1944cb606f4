"""The API-mapping knowledge base: APIs, source -> target mappings, declared differences.

Data lives in ``conformance/registry/*.yaml`` (one file per source framework); this module only
loads and validates it and answers questions about it. Nothing here is evaluated: conditions
(``when:`` / ``unless:``) are plain ``field: [allowed values]`` mappings.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import yamlsafe

HERE = Path(__file__).parent

#: Paddle's API-mapping categories (the PaConvert / "PyTorch-Paddle API mapping" vocabulary),
#: plus "identity" for an API run against its own oracle (the reference check).
CATEGORIES = (
    "identity",
    "fully consistent",
    "only API name differs",
    "only parameter names differ",
    "more parameters on the source side",
    "more parameters on the target side",
    "default values differ",
    "input usage differs",
    "return type differs",
    "composite replacement",
    "missing",
)

KNOBS = {"scope", "nesting", "eps", "threshold", "accumulate", "nonfinite", "order", "nan", "raises",
         "norm_type", "power_sum", "root", "sum_dtype", "max_nan", "max_norm_dtype", "rescale", "divide", "zero_dim",
         "bound_dtype", "square_sum_floor",
         "error_if_nonfinite",  # norm_type, error_if_nonfinite: a variant overriding the source
                                # argument (an L2-only target; a target that never raises)
         "nonscalar", "unused", "accumulation"}  # derivation knobs (conformance/oracle/derivation.py)
#: knobs of conformance.oracle.training (training-step APIs, registry/training.yaml)
TRAINING_KNOBS = {"scaler", "backoff", "min_scale", "backoff_every", "group_lr", "clip_eps", "micro_loss",
                  "clip_scope"}
KNOBS = KNOBS | TRAINING_KNOBS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict):
    required: bool = False
    default: Any = None
    doc: str = ""
    # what a case may give: "number" (checked), "any" (e.g. MindSpore's grad_position: an int,
    # a list or null); unset: a number when the default is one
    accepts: Optional[Literal["number", "any"]] = None


class OracleSpec(_Strict):
    module: Literal["clipping", "derivation", "training"] = "clipping"  # conformance.oracle.<module>
    fn: str  # a function of that module
    args: dict[str, str] = {}  # oracle parameter -> this API's parameter
    knobs: dict[str, Any] = {}

    @model_validator(mode="after")
    def _knobs(self):
        bad = set(self.knobs) - KNOBS
        if bad:
            raise ValueError(f"unknown oracle knobs {sorted(bad)}; known: {sorted(KNOBS)}")
        return self


class Api(_Strict):
    name: str
    framework: Literal["torch", "mindspore", "paddle", "tensorflow", "jax"]
    signature: str
    doc: str = ""
    summary: str = ""
    params: dict[str, Param] = {}
    takes: Literal["parameters", "grads"] = "parameters"  # what the first argument is
    returns: Literal["total_norm", "grads", "values", "none"] = "none"  # values: derivation outputs too
    oracle: Optional[OracleSpec] = None  # how the oracle reproduces this API as a source


class Range(_Strict):
    """A numeric range a fact must lie in: ``{above: 65504, below: .inf}`` (strict bounds) or
    ``{at_least: 0, at_most: 1}``. Data, compared by value; a fact that is not a number (absent,
    None, a string, a bool) or NaN is in no range. Used where a list of values cannot say it:
    a bound beyond a dtype's largest finite value."""

    above: Optional[float] = None
    below: Optional[float] = None
    at_least: Optional[float] = None
    at_most: Optional[float] = None

    @model_validator(mode="after")
    def _some_bound(self):
        if all(getattr(self, k) is None for k in ("above", "below", "at_least", "at_most")):
            raise ValueError("a range condition needs at least one of above, below, at_least, at_most")
        return self

    def contains(self, x) -> bool:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
            return False
        return ((self.above is None or x > self.above) and (self.below is None or x < self.below)
                and (self.at_least is None or x >= self.at_least) and (self.at_most is None or x <= self.at_most))


#: a condition field: the list of allowed values, or a numeric range
Allowed = Union[list[Any], Range]


class Condition(_Strict):
    """``{dtype: [float16], args.norm_type: [1.0, .inf], args.clip_value: {above: 65504}}``:
    every named field must be in its list (or range)."""

    fields: dict[str, Allowed]

    def holds(self, facts: dict) -> bool:
        return all(vs.contains(facts.get(k)) if isinstance(vs, Range) else any(_same(facts.get(k), v) for v in vs)
                   for k, vs in self.fields.items())


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
    return a == b


class Difference(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    text: str
    when: dict[str, Allowed] = {}
    unless: dict[str, Allowed] = {}
    variant: dict[str, Any]  # oracle knobs that reproduce the target's behaviour
    docs_contradict: str = ""  # where the framework's own documentation says otherwise
    match: Optional[str] = None  # with `raises`: a substring the "Type: message" text must contain

    @model_validator(mode="after")
    def _variant(self):
        bad = set(self.variant) - KNOBS
        if bad:
            raise ValueError(f"unknown oracle knobs {sorted(bad)}; known: {sorted(KNOBS)}")
        return self

    def applies(self, facts: dict) -> bool:
        return applies(self.when, self.unless, facts)


class Unsupported(_Strict):
    when: dict[str, Allowed] = {}
    unless: dict[str, Allowed] = {}
    reason: str
    match: Optional[str] = None  # substring of "Type: message" the raised error must contain
    #: the target *returns* here, but its numbers are undefined (measured: uninitialised memory),
    #: so no oracle variant can reproduce them: a cell that matches neither the oracle nor a
    #: declared difference is `unsupported` with this reason instead of `mismatch`. Never
    #: applies to a raise.
    undefined: bool = False

    @model_validator(mode="after")
    def _undefined(self):
        if self.undefined and self.match is not None:
            raise ValueError("an `undefined: true` entry is about returned numbers: it takes no `match:`")
        return self

    def applies(self, facts: dict, raised_text: Optional[str] = None) -> bool:
        if self.match is not None and raised_text is not None and self.match not in raised_text:
            return False
        return applies(self.when, self.unless, facts)


def applies(when: dict, unless: dict, facts: dict) -> bool:
    if when and not Condition(fields=when).holds(facts):
        return False
    if unless and Condition(fields=unless).holds(facts):
        return False
    return True


ArgRule = Union[str, dict[str, Any]]  # "source_param" | {from: p, op: neg} | {value: v}


class Mapping(_Strict):
    source: str
    target: str
    category: str
    args: Optional[dict[str, ArgRule]] = None  # target param -> rule; None: same names
    notes: str = ""
    #: where the mapping misleads (a per-tensor API offered for a global one, an argument
    #: silently dropped): said plainly in the report's mapping table
    misleading: str = ""
    differences: list[Difference] = []
    unsupported: list[Unsupported] = []

    @model_validator(mode="after")
    def _category(self):
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; known: {list(CATEGORIES)}")
        return self

    @property
    def backend(self) -> str:
        return self.target.split(".", 1)[0]


class RegistryFile(_Strict):
    apis: dict[str, dict[str, Any]] = {}
    mappings: list[Mapping] = []


class Registry:
    def __init__(self, apis: dict[str, Api], mappings: list[Mapping]):
        self.apis = apis
        self.mappings = mappings
        for m in mappings:
            if m.category == "missing":  # target names only the framework that lacks the API
                if "." in m.target:
                    raise ValueError(f"missing mapping {m.source} -> {m.target}: name only the framework")
                continue
            for end in (m.source, m.target):
                if end not in apis:
                    raise ValueError(f"mapping {m.source} -> {m.target}: {end} is not a registered API")
            if apis[m.source].oracle is None:
                raise ValueError(f"mapping source {m.source} has no oracle")

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
                "categories": list(CATEGORIES),
                # python mode, then _jsonable: mode="json" writes a float inf in a list[Any]
                # condition (`args.norm_type: [.inf]`) as null, and the report then said "None"
                "mappings": [_jsonable(m.model_dump()) for m in self.mappings]}

    def difference(self, diff_id: str) -> Optional[Difference]:
        for m in self.mappings:
            for d in m.differences:
                if d.id == diff_id:
                    return d
        return None

    def source_args(self, source: str, given: dict) -> tuple[dict, list[str]]:
        """The source call's full arguments (defaults filled) and problems with ``given``."""
        api = self.apis[source]
        problems = []
        import difflib

        for k in given:
            if k not in api.params:
                close = difflib.get_close_matches(k, list(api.params), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{k}: {source} has no argument {k!r}{hint}")
        for k, v in given.items():  # a number where the API takes one (YAML "2.0" is a string)
            p = api.params.get(k)
            numeric = p is not None and (p.accepts == "number" or (
                p.accepts is None and isinstance(p.default, (int, float)) and not isinstance(p.default, bool)))
            if numeric and (isinstance(v, bool) or not isinstance(v, (int, float))):
                problems.append(f"{k}: {source} takes a number for {k!r}, got {v!r}")
        for k, p in api.params.items():
            if p.required and k not in given:
                problems.append(f"{k}: required argument of {source} is missing")
        args = {k: p.default for k, p in api.params.items() if not p.required}
        args.update({k: v for k, v in given.items() if k in api.params})
        return args, problems

    @staticmethod
    def translate(mapping: Mapping, args: dict) -> dict:
        """Source-API arguments -> target-API arguments, by the mapping's declarative rules."""
        if mapping.args is None:
            return dict(args)
        out = {}
        for target_param, rule in mapping.args.items():
            if isinstance(rule, str):
                if rule in args:
                    out[target_param] = args[rule]
            elif "value" in rule:
                out[target_param] = rule["value"]
            else:
                v = args.get(rule["from"])
                op = rule.get("op", "identity")
                if v is None or op == "identity":
                    out[target_param] = v
                elif op == "neg":
                    out[target_param] = -v
                elif op == "int":  # a target that takes an int (an integral float converts;
                    # any other value passes unchanged, so the target's own error shows)
                    out[target_param] = int(v) if isinstance(v, float) and v.is_integer() else v
                else:
                    raise ValueError(f"unknown argument op {op!r} in {mapping.source} -> {mapping.target}")
        return out


def _jsonable(value):
    """Non-finite floats (``.inf`` in conditions) as strings, so the snapshot is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _load_file(path: Path) -> RegistryFile:
    data = yamlsafe.load(path.read_text(encoding="utf-8")) or {}
    try:
        return RegistryFile.model_validate(data)
    except Exception as e:  # re-raise with the file name: the registry is shipped data
        raise ValueError(f"{path}: {e}") from e


@lru_cache(maxsize=None)
def load(directory: Optional[str] = None) -> Registry:
    """Load every ``*.yaml`` in the registry directory (default: the bundled one)."""
    apis: dict[str, Api] = {}
    mappings: list[Mapping] = []
    for path in sorted(Path(directory or HERE).glob("*.yaml")):
        f = _load_file(path)
        for name, body in f.apis.items():
            if name in apis:
                raise ValueError(f"{path}: API {name} is registered twice")
            try:
                apis[name] = Api(name=name, **body)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{path}: API {name}: {e}") from e
        mappings.extend(f.mappings)
    return Registry(apis, mappings)
