"""The entries of the registry's YAML files, as pydantic models: APIs, mappings, declared
differences and gaps, and the conditions (``when:`` / ``unless:``) that say where they apply.
Conditions are plain ``field: [allowed values]`` data (or a numeric range), never evaluated."""

from __future__ import annotations

import math
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import frameworks, tensors

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

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Param(_Strict):
    required: bool = False
    default: Any = None
    doc: str = ""
    # what a case may give: "number", "bool" (None too where that is the default), "any" (e.g.
    # MindSpore's grad_position: an int, a list or null); unset: a number when the parameter is
    # required or its default is a number, a bool when its default is one, else anything
    accepts: Optional[Literal["number", "bool", "any"]] = None
    # the API also takes a Tensor here (a case writes `{tensor: 0.4, dtype: float64}`); an
    # API that does not is given the number
    tensor: bool = False

    def kind(self) -> str:
        """What the parameter accepts, explicit or inferred (see ``accepts``)."""
        if self.accepts is not None:
            return self.accepts
        if isinstance(self.default, bool):
            return "bool"
        if self.required or isinstance(self.default, (int, float)):
            return "number"
        return "any"

    def refuses(self, value) -> Optional[str]:
        """What the parameter takes, when ``value`` is not that (None when it is)."""
        kind = self.kind()
        if tensors.is_tensor_arg(value):
            if not self.tensor:
                return "a number (it does not take a Tensor here)"
            problem = tensors.tensor_arg_problem(value)
            return f"a tensor of one number: {problem}" if problem else None
        if kind == "any" or (value is None and self.default is None and not self.required):
            return None
        if kind == "bool" and not isinstance(value, bool):
            return "true or false"
        if kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return "a number"
        return None


class OracleSpec(_Strict):
    fn: str  # a function of the API's kind's oracle (conformance/kinds/<kind>/oracle.py)
    args: dict[str, str] = {}  # oracle parameter -> this API's parameter
    knobs: dict[str, Any] = {}  # the function's variant knobs (checked against its signature on load)


class Api(_Strict):
    name: str
    framework: str  # a framework folder (conformance/frameworks/<name>), the name's first component or one of its prefixes
    kind: str = "clipping"  # a kind folder (conformance/kinds/<kind>): what its cases and cells are
    style: Optional[str] = None  # derivation APIs: how the call names what it differentiates
    signature: str
    doc: str = ""
    summary: str = ""
    params: dict[str, Param] = {}
    takes: Literal["parameters", "grads"] = "parameters"  # what the first argument is
    returns: Literal["total_norm", "grads", "values", "none"] = "none"  # values: derivation outputs too
    # how the gradients may be passed (clipping): a list, and for some APIs one bare Tensor
    # (`clip.form: tensor` in a case)
    forms: list[Literal["list", "tensor"]] = ["list"]
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


class Relation(_Strict):
    """A fact in a relation to another fact of the same cell: ``{neg_of: args.clip_value_max}``
    holds where the fact is the other one negated (symmetric bounds), ``or_null: true`` also
    where the fact is null (Paddle's ``min`` left at its default, which is ``-max``). Numbers
    compared by value; nothing evaluated."""

    neg_of: str
    or_null: bool = False

    def contains(self, x, facts: dict) -> bool:
        if x is None:
            return self.or_null
        other = facts.get(self.neg_of)
        number = (int, float)
        if isinstance(x, bool) or isinstance(other, bool) or not isinstance(x, number) or not isinstance(other, number):
            return False
        return x == -other


#: a condition field: the list of allowed values, a numeric range, or a relation to another fact
Allowed = Union[list[Any], Range, Relation]


class Condition(_Strict):
    """``{dtype: [float16], args.norm_type: [1.0, .inf], args.clip_value: {above: 65504}}``:
    every named field must be in its list (or range, or relation)."""

    fields: dict[str, Allowed]

    def holds(self, facts: dict) -> bool:
        return holds(self.fields, facts)


def holds(fields: dict, facts: dict) -> bool:
    """Whether every named field of ``facts`` is in its list (or range, or relation): the test of
    a ``when:``/``unless:`` mapping already validated as a ``Condition``'s fields."""
    for k, vs in fields.items():
        if isinstance(vs, Range):
            if not vs.contains(facts.get(k)):
                return False
        elif isinstance(vs, Relation):
            if not vs.contains(facts.get(k), facts):
                return False
        else:
            got = facts.get(k)
            if not any(_same(got, v) for v in vs):
                return False
    return True


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
    variant: dict[str, Any]  # oracle knobs that reproduce the target's behaviour (checked on load)
    docs_contradict: str = ""  # where the framework's own documentation says otherwise
    match: Optional[str] = None  # with `raises`: a substring the "Type: message" text must contain

    def applies(self, facts: dict) -> bool:
        return applies(self.when, self.unless, facts)


class Unsupported(_Strict):
    when: dict[str, Allowed] = {}
    unless: dict[str, Allowed] = {}
    reason: str
    match: Optional[str] = None  # substring of "Type: message" the raised error must contain
    #: the target *returns* here, but its numbers cannot be held against the source's (measured:
    #: uninitialised memory, a flush-to-zero mode that varies; or a call the target cannot
    #: express, asymmetric bounds for a symmetric API): no oracle variant can reproduce them, so
    #: the cell is `unsupported` with this reason whatever its numbers. Never applies to a raise.
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
    """``when`` holds and ``unless`` does not (both validated on load: checked per cell, so no
    model is built here)."""
    if when and not holds(when, facts):
        return False
    if unless and holds(unless, facts):
        return False
    return True


ArgRule = Union[str, dict[str, Any]]  # "p" | {from: p, op: neg | int | tensor, fallback: rule} | {value: v}


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
    varies: list[Varies] = []
    #: how the target computes, whatever the source (its summation order, say): joined from a
    #: file's ``numerics:``; each is tried alone and on top of every difference's variant, since
    #: a kernel's arithmetic comes with whatever semantics the mapping has
    numerics: list[Difference] = []

    @model_validator(mode="after")
    def _category(self):
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}; known: {list(CATEGORIES)}")
        return self

    @property
    def backend(self) -> str:
        """The target's framework (``frameworks.api_framework``)."""
        return frameworks.api_framework(self.target)


class Varies(_Strict):
    """The target's numbers vary from call to call within the tolerance (a kernel whose rounding
    depends on memory alignment or thread scheduling), measured and declared: ``run --repeat``
    keeps such a cell's verdict when its runs agree on it, and says that its numbers varied."""

    when: dict[str, Allowed] = {}
    unless: dict[str, Allowed] = {}
    reason: str

    def applies(self, facts: dict) -> bool:
        return applies(self.when, self.unless, facts)


class TargetVaries(Varies):
    """A ``Varies`` of some target APIs whatever the source (a file's ``varies:``)."""

    targets: list[str]


class TargetNumerics(Difference):
    """A ``Difference`` in how some target APIs compute, whatever the source (a file's
    ``numerics:``): the summation order of their kernels, say. It joins the ``numerics`` of
    every mapping whose target is one of ``targets``."""

    targets: list[str]


class TargetGap(Unsupported):
    """A gap of some target APIs whatever the source (a file's ``unsupported:``): it joins the
    ``unsupported`` list of every mapping whose target is one of ``targets``."""

    targets: list[str]


class RegistryFile(_Strict):
    apis: dict[str, dict[str, Any]] = {}
    mappings: list[Mapping] = []
    unsupported: list[TargetGap] = []
    varies: list[TargetVaries] = []
    numerics: list[TargetNumerics] = []
