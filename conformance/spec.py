"""Case files: pydantic models, safe YAML loading with ``file:line: field: problem`` errors,
sweep expansion and the JSON Schema editors use.

Only PyYAML's safe loader is used (``yamlsafe``: libyaml's ``CSafeLoader`` where PyYAML has it,
else ``yaml.SafeLoader``, both reading ``1e-6`` as a float) and nothing from a file is evaluated:
tensor values are data (lists or generator mappings) that ``tensors`` materialises.
"""

from __future__ import annotations

import difflib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from . import yamlsafe

Dtype = Literal["float64", "float32", "float16", "bfloat16"]
Device = Literal["cpu", "gpu"]
ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# ---------------------------------------------------------------------------------------------
# tensor values


PutEntry = Annotated[list[Union[int, float]], Field(min_length=1)]


class _Gen(_Strict):
    """Fields every generator mapping shares: ``scale`` (multiplies the generated values),
    ``put`` (special values placed after scaling: ``[[i, j, value], ...]``, one index per axis,
    negative indices count from the end; ``value`` may be ``.nan``/``.inf``/``-.inf``), and
    ``dtype`` (under ``grads:`` only: this parameter has that dtype whatever the cell's dtype,
    for parameters of mixed dtypes)."""

    shape: list[Annotated[int, Field(ge=0)]] = []
    scale: float = 1.0
    put: Optional[list[PutEntry]] = None
    dtype: Optional[Dtype] = None

    @model_validator(mode="after")
    def _put(self):
        for k, entry in enumerate(self.put or []):
            *index, _value = entry
            if any(isinstance(i, bool) or not isinstance(i, int) for i in index):
                raise ValueError(f"put[{k}]: indices must be integers, got {index!r}")
            if self.shape or "shape" in self.model_fields_set:
                if len(index) != len(self.shape):
                    raise ValueError(f"put[{k}]: {len(index)} indices for a tensor of shape {self.shape}")
                for axis, (i, n) in enumerate(zip(index, self.shape)):
                    if not -n <= i < n:
                        raise ValueError(f"put[{k}]: index {i} out of range for axis {axis} of size {n}")
        return self

    def as_dict(self) -> dict:
        return self.model_dump(exclude_none=True)


class RandomGen(_Gen):
    random: Literal["normal", "uniform", "randint"]
    seed: int = 0
    mean: float = 0.0
    std: float = 1.0
    low: Optional[float] = None
    high: Optional[float] = None

    @model_validator(mode="after")
    def _bounds(self):
        if self.random == "randint" and (self.low is None or self.high is None):
            raise ValueError("randint needs low and high")
        return self

    def as_dict(self) -> dict:
        d = self.model_dump(exclude_none=True)
        d.setdefault("low", -1.0)
        d.setdefault("high", 1.0)
        return d


class FillGen(_Gen):
    fill: float


class ArangeGen(_Gen):
    arange: Annotated[list[float], Field(min_length=2, max_length=2)]


def _check_nested(v: Any) -> Any:
    """A nested list must be rectangular and hold numbers only (YAML .nan/.inf are numbers)."""

    def shape_of(x, where):
        if isinstance(x, list):
            shapes = {shape_of(e, f"{where}[{i}]") for i, e in enumerate(x)}
            if len(shapes) > 1:
                raise ValueError(f"ragged nested list at {where or 'top level'}")
            return (len(x),) + (shapes.pop() if shapes else ())
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(f"expected a number at {where or 'top level'}, got {x!r}")
        return ()

    shape_of(v, "")
    return v


def _tensor_kind(v: Any) -> Optional[str]:
    if isinstance(v, dict):
        for key in ("random", "fill", "arange"):
            if key in v:
                return key
        return None
    if isinstance(v, list):
        return "list"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return "scalar"
    return None


TensorValue = Annotated[
    Union[
        Annotated[RandomGen, Tag("random")],
        Annotated[FillGen, Tag("fill")],
        Annotated[ArangeGen, Tag("arange")],
        Annotated[list, Tag("list")],
        Annotated[float, Tag("scalar")],
    ],
    Discriminator(
        _tensor_kind,
        custom_error_type="tensor_value",
        custom_error_message="expected a number, a nested list or a generator mapping "
        "({random: ...}, {fill: ...} or {arange: ...})",
    ),
]


def tensor_data(v: Any) -> Any:
    """The plain value ``tensors.materialize`` takes (generator models become dicts)."""
    return v.as_dict() if hasattr(v, "as_dict") else v


# ---------------------------------------------------------------------------------------------
# models


def _pair(v) -> list[int]:
    return [v, v] if isinstance(v, int) else list(v)


class _Layer(_Strict):
    name: Optional[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]] = None


class Linear(_Layer):
    type: Literal["linear"]
    in_: Annotated[int, Field(alias="in", ge=1)]
    out: Annotated[int, Field(ge=1)]
    weight: Optional[TensorValue] = None
    bias: Optional[TensorValue] = None  # explicitly null = no bias; absent = default init


class Conv2d(_Layer):
    type: Literal["conv2d"]
    in_: Annotated[int, Field(alias="in", ge=1)]
    out: Annotated[int, Field(ge=1)]
    kernel: Union[int, Annotated[list[int], Field(min_length=2, max_length=2)]]
    stride: Union[int, Annotated[list[int], Field(min_length=2, max_length=2)]] = 1
    padding: Union[int, Annotated[list[int], Field(min_length=2, max_length=2)]] = 0
    weight: Optional[TensorValue] = None
    bias: Optional[TensorValue] = None


class Embedding(_Layer):
    type: Literal["embedding"]
    num: Annotated[int, Field(ge=1)]
    dim: Annotated[int, Field(ge=1)]
    weight: Optional[TensorValue] = None


class Activation(_Layer):
    type: Literal["relu", "tanh", "sigmoid", "flatten"]


Layer = Annotated[Union[Linear, Conv2d, Embedding, Activation], Field(discriminator="type")]


class Loss(_Strict):
    type: Literal["cross_entropy", "mse", "l1", "sum"]
    reduction: Literal["mean", "sum"] = "mean"


class Model(_Strict):
    layers: Annotated[list[Layer], Field(min_length=1)]
    loss: Loss
    inputs: TensorValue
    targets: Optional[TensorValue] = None

    @model_validator(mode="after")
    def _targets(self):
        if self.targets is None and self.loss.type != "sum":
            raise ValueError(f"loss {self.loss.type} needs targets")
        return self

    @model_validator(mode="after")
    def _no_param_dtype(self):
        """A network has one dtype (the cell's): ``dtype:`` is for injected gradients only."""
        values = [self.inputs, self.targets] + [getattr(layer, k, None) for layer in self.layers
                                                for k in ("weight", "bias")]
        if any(getattr(v, "dtype", None) is not None for v in values):
            raise ValueError("`dtype:` in a tensor generator is for injected `grads:` only; "
                             "a model runs in the cell's dtype")
        return self


# ---------------------------------------------------------------------------------------------
# derivation cases: the differentiated function as data (docs/derivation.md)

FN_OPS = ("add", "sub", "mul", "pow", "matmul", "linear", "tanh", "sum", "mean", "squeeze", "mse")
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*$"


class FnOp(_Strict):
    """One step of a ``function:``: ``out = op(*args)``; an arg names an input, a weight or an
    earlier ``out``, or is a number where the op takes one (add, sub, mul, pow)."""

    op: Literal[FN_OPS]
    args: Annotated[list[Union[Annotated[str, Field(pattern=NAME_PATTERN)], float]], Field(min_length=1)]
    out: Annotated[str, Field(pattern=NAME_PATTERN)]


class Function(_Strict):
    """The function a derivation API differentiates: named positional ``inputs`` (in order:
    MindSpore's grad_position indexes them), named ``weights`` (parameters), ``ops`` from a
    fixed vocabulary, and the ``outputs`` it returns, in order. Nothing is evaluated."""

    inputs: dict[Annotated[str, Field(pattern=NAME_PATTERN)], TensorValue]
    weights: dict[Annotated[str, Field(pattern=NAME_PATTERN)], TensorValue] = {}
    ops: Annotated[list[FnOp], Field(min_length=1)]
    outputs: Annotated[list[Annotated[str, Field(pattern=NAME_PATTERN)]], Field(min_length=1)]


def function_problems(fn: Function) -> list[tuple[tuple, str]]:
    """(location, problem) for names used before they are defined, defined twice, wrong op
    arities, numbers where an op needs a tensor, and outputs that name nothing."""
    from .oracle.derivation import ARITY, CONSTANTS_OK

    out = []
    defined = {}
    for group in ("inputs", "weights"):
        for name in getattr(fn, group):
            if name in defined:
                out.append(((("function", group, name)), f"{name!r} is also {defined[name]}"))
            defined[name] = f"an {group[:-1]}" if group == "inputs" else "a weight"
    for i, op in enumerate(fn.ops):
        lo, hi = ARITY[op.op]
        if not lo <= len(op.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} or {hi}"
            out.append((("function", "ops", i, "args"), f"{op.op} takes {want} arguments, got {len(op.args)}"))
        for j, a in enumerate(op.args):
            loc = ("function", "ops", i, "args", j)
            if isinstance(a, str):
                if a not in defined:
                    out.append((loc, f"{a!r} is not an input, a weight or an earlier op's out"
                                     + _suggest(a, defined)))
            elif op.op not in CONSTANTS_OK:
                out.append((loc, f"{op.op} needs tensors, not the number {a!r}"))
        if op.op == "pow" and len(op.args) == 2 and isinstance(op.args[1], str):
            out.append((("function", "ops", i, "args", 1), "the exponent of pow must be a number"))
        if op.out in defined:
            out.append((("function", "ops", i, "out"), f"{op.out!r} is already {defined[op.out]}"))
        defined.setdefault(op.out, f"the out of ops[{i}]")
    for k, name in enumerate(fn.outputs):
        if name not in defined:
            out.append((("function", "outputs", k), f"{name!r} names nothing" + _suggest(name, defined)))
    return out


class Clip(_Strict):
    api: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]
    args: dict[str, Any] = {}


# --- training step (docs/training.md) ----------------------------------------------------------


class StepGroup(_Strict):
    """An optimizer parameter group: its parameters and the hyper-parameters it overrides."""

    params: Annotated[list[str], Field(min_length=1)]
    lr: Optional[Annotated[float, Field(gt=0)]] = None
    weight_decay: Optional[Annotated[float, Field(ge=0)]] = None


class Step(_Strict):
    """A training-step case: the loop around the clip (``clip.api`` names a training-step API of
    the registry). Inputs are split into ``micro_batches`` along the batch dimension; step ``k``
    multiplies them by ``input_scales[k]`` (huge values make that step overflow)."""

    steps: Annotated[int, Field(ge=1, le=50)] = 1
    micro_batches: Annotated[int, Field(ge=1)] = 1
    input_scales: Optional[list[float]] = None
    max_norm: Optional[Annotated[float, Field(gt=0)]] = None  # clip_grad_norm_ inside the step
    clip_params: Optional[list[str]] = None  # parameters clipped (default: all)
    lr: Annotated[float, Field(gt=0)] = 0.1  # the step's SGD (an optimizer source API sets its own)
    groups: Optional[Annotated[list[StepGroup], Field(min_length=1)]] = None

    @field_validator("input_scales")
    @classmethod
    def _one_per_step(cls, v, info):
        steps = info.data.get("steps")  # validated before input_scales (field order)
        if v is not None and steps is not None and len(v) != steps:
            raise ValueError(f"{len(v)} values for {steps} steps (one input scale per step)")
        return v


def _batch_size(value) -> Optional[int]:
    """The first dimension of a tensor value when the file states it (a list, or a generator's
    ``shape``); None otherwise."""
    if isinstance(value, list):
        return len(value)
    shape = getattr(value, "shape", None)
    return shape[0] if shape else None


class Expect(_Strict):
    total_norm: Optional[float] = None
    grads: Optional[dict[str, Optional[TensorValue]]] = None
    values: Optional[dict[str, TensorValue]] = None  # derivation: returned outputs (value, aux) by name
    atol: Annotated[float, Field(ge=0)] = 1e-6
    raises: bool = False


class Tolerance(_Strict):
    rtol: Annotated[float, Field(ge=0)]
    atol: Annotated[float, Field(ge=0)]
    reason: Annotated[str, Field(min_length=3)]


SWEEP_KEYS = ("dtypes", "devices")


def _sweep_key(key: str) -> str:
    if key not in SWEEP_KEYS and (not key.startswith("clip.args.") or key == "clip.args."):
        hint = _suggest(key, ["clip.args.NAME", *SWEEP_KEYS])
        raise ValueError(f"sweep key {key!r} is not one of clip.args.NAME, dtypes, devices{hint}")
    return key


class Case(_Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    title: str
    source: str = ""
    tags: list[str] = []
    dtypes: Annotated[list[Dtype], Field(min_length=1)] = ["float32"]
    devices: Annotated[list[Device], Field(min_length=1)] = ["cpu", "gpu"]
    grads: Optional[dict[str, Optional[TensorValue]]] = None
    model: Optional[Model] = None
    function: Optional[Function] = None  # derivation cases: the function the call differentiates
    clip: Clip
    step: Optional[Step] = None  # a training-step case (needs `model:`)
    targets: Optional[list[str]] = None  # restrict to these target APIs (default: all mapped)
    sweep: dict[Annotated[str, AfterValidator(_sweep_key)], Annotated[list[Any], Field(min_length=1)]] = {}
    expect: Optional[Expect] = None
    tolerance: dict[Dtype, Tolerance] = {}

    @field_validator("tolerance", mode="before")
    @classmethod
    def _tolerance_per_dtype(cls, v):
        """One clear message for the common slip `tolerance: {rtol: ...}` (pydantic would report
        the key and the value separately, neither naming the expected form)."""
        if isinstance(v, dict):
            dtypes = Dtype.__args__
            for key in v:
                if key not in dtypes:
                    raise ValueError(f"tolerance is given per dtype: {key!r} is not one of "
                                     f"{', '.join(dtypes)}{_suggest(key, dtypes)}; write "
                                     "`tolerance: {float16: {rtol: ..., atol: ..., reason: ...}}`")
        return v

    @model_validator(mode="after")
    def _one_source_of_grads(self):
        if [self.grads, self.model, self.function].count(None) != 2:
            raise ValueError("exactly one of `grads:`, `model:` or `function:` is required")
        if self.step is not None and self.model is None:
            raise ValueError("a `step:` case needs `model:` (each framework differentiates it)")
        if self.step is not None:
            batch = _batch_size(self.model.inputs)
            if batch is not None and batch % self.step.micro_batches:
                raise ValueError(f"step.micro_batches: {self.step.micro_batches} does not divide "
                                 f"the batch of {batch} inputs into equal micro-batches")
        return self

    @model_validator(mode="after")
    def _sweep_values(self):
        for key in ("dtypes", "devices"):
            allowed = Dtype.__args__ if key == "dtypes" else Device.__args__
            bad = [x for x in self.sweep.get(key, []) if x not in allowed]
            if bad:
                raise ValueError(f"sweep {key}: {bad} not in {list(allowed)}")
        return self

    # -- derived --------------------------------------------------------------------------
    def variants(self) -> list["Variant"]:
        """Expand ``sweep`` into the cartesian product of its values, in file order."""
        keys = list(self.sweep)
        out = []
        for combo in itertools.product(*(self.sweep[k] for k in keys)) if keys else [()]:
            chosen = dict(zip(keys, combo))
            args = dict(self.clip.args)
            shown = {}
            for k, v in chosen.items():
                if k.startswith("clip.args."):
                    args[k[len("clip.args."):]] = v
                    shown[k[len("clip.args."):]] = v
            dtypes = [chosen["dtypes"]] if "dtypes" in chosen else list(self.dtypes)
            devices = [chosen["devices"]] if "devices" in chosen else list(self.devices)
            out.append(Variant(self, args, dtypes, devices, shown))
        return out


@dataclass
class Variant:
    """One sweep combination of a case: its source-API args and the dtypes/devices to run."""

    case: Case
    args: dict
    dtypes: list
    devices: list
    sweep: dict = field(default_factory=dict)

    def label(self) -> str:
        return "-".join(f"{k}={format_value(v)}" for k, v in self.sweep.items())


def format_value(v: Any) -> str:
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
        return repr(v)
    return str(v)


# ---------------------------------------------------------------------------------------------
# loading with line numbers


@dataclass
class CaseError:
    path: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.path}:{self.line}: {where}{self.problem}"


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


class _Dup(Exception):
    pass


def _line_map(node, path=(), out=None, fname="") -> dict:
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
                raise _Dup(CaseError(fname, knode.start_mark.line + 1, _dotted(path + (key,)),
                                     f"duplicate key (first at line {seen[key]})"))
            seen[key] = knode.start_mark.line + 1
            out[path + (key,)] = knode.start_mark.line + 1
            _line_map(vnode, path + (key,), out, fname)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_map(item, path + (i,), out, fname)
    return out


def _dotted(path) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s


def _line_of(lines: dict, loc) -> int:
    loc = tuple(loc)
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_fields_at(loc, data) -> list[str]:
    """Names a misspelt key at ``loc`` could have meant: the fields of the model found there by
    following the type annotations from ``Case`` along ``loc`` (dict keys, list indices, fields)."""
    ann: Any = Case
    node = data
    for part in loc[:-1]:
        node = node[part] if _has(node, part) else None
        ann = _step(ann, part, node)
        if ann is None:
            return []
    model = _pick_model(ann, node)
    return [f.alias or n for n, f in model.model_fields.items()] if model else []


def _step(ann, part, node):
    """The annotation one level down: a model field, a dict value or a list item."""
    import typing

    model = _pick_model(ann, node if isinstance(part, int) else None)
    for a in _flatten(ann):
        origin = typing.get_origin(a)
        if origin is dict and isinstance(part, str) and (model is None or part not in model.model_fields):
            return typing.get_args(a)[1]
        if origin is list and isinstance(part, int):
            return typing.get_args(a)[0]
    if model is not None and isinstance(part, str):
        f = model.model_fields.get(part) or next(
            (x for x in model.model_fields.values() if x.alias == part), None)
        return f.annotation if f else None
    return None


def _flatten(ann) -> list:
    """Unwrap Annotated/Optional/Union into their member annotations."""
    import typing

    origin = typing.get_origin(ann)
    if origin is Annotated:
        return _flatten(typing.get_args(ann)[0])
    if origin is Union:
        return [m for a in typing.get_args(ann) for m in _flatten(a)]
    return [ann]


def _pick_model(ann, node):
    """The pydantic model among ``ann``'s members that fits ``node`` (layer ``type``, generator key)."""
    import typing

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


GENERATOR_KEYS = ("random", "fill", "arange")


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


def _errors_from_validation(exc: ValidationError, path: str, lines: dict, data) -> list[CaseError]:
    out = []
    for err in exc.errors():
        loc = _data_loc(err["loc"], data)
        problem = err["msg"]
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            problem = "unknown field" + _suggest(loc[-1], _model_fields_at(loc, data))
        elif err["type"] == "missing":
            problem = "required field is missing"
        elif err["type"] == "value_error" and "error" in (err.get("ctx") or {}):
            problem = str(err["ctx"]["error"])
        elif err["type"] == "union_tag_invalid":
            kind = value.get("type") if isinstance(value, dict) else value
            problem = f"unknown layer type {kind!r}" + _suggest(
                str(kind), ["linear", "conv2d", "embedding", "relu", "tanh", "sigmoid", "flatten"])
        elif err["type"] == "tensor_value" and isinstance(value, dict):
            hint = next((_suggest(k, GENERATOR_KEYS) for k in value if _suggest(k, GENERATOR_KEYS)), "")
            problem = f"a generator mapping needs one of the keys random, fill, arange{hint}"
        out.append(CaseError(path, _line_of(lines, loc), _dotted(loc), problem))
    return out


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
            lines = _line_map(node, fname=path)
        except _Dup as d:
            result.errors.append(d.args[0])
            continue
        start = node.start_mark.line + 1
        try:
            data = _construct(node)
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
            result.errors.extend(_aliased(err, alias) for err in _errors_from_validation(e, path, lines, data))
            continue
        ok = True
        if case.function is not None:
            for loc, problem in function_problems(case.function):
                ok = False
                result.errors.append(CaseError(path, _line_of(lines, loc), _dotted(loc), problem))
        for value, loc in _nested_list_locs(data):
            try:
                _check_nested(value)
            except ValueError as e:
                ok = False
                result.errors.append(CaseError(path, _line_of(lines, loc), _dotted(loc), str(e)))
        if ok:
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


def _construct(node):
    loader = yamlsafe.PY_LOADER("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _nested_list_locs(data):
    """Yield (value, loc) for every tensor value given as a nested list (checked for shape)."""
    if isinstance(data.get("grads"), dict):
        for k, v in data["grads"].items():
            if isinstance(v, list):
                yield v, ("grads", k)
    model = data.get("model")
    if isinstance(model, dict):
        for key in ("inputs", "targets"):
            if isinstance(model.get(key), list):
                yield model[key], ("model", key)
        for i, layer in enumerate(model.get("layers") or []):
            if isinstance(layer, dict):
                for key in ("weight", "bias"):
                    if isinstance(layer.get(key), list):
                        yield layer[key], ("model", "layers", i, key)
    function = data.get("function")
    if isinstance(function, dict):
        for group in ("inputs", "weights"):
            if isinstance(function.get(group), dict):
                for k, v in function[group].items():
                    if isinstance(v, list):
                        yield v, ("function", group, k)
    expect = data.get("expect")
    for group in ("grads", "values"):
        if isinstance(expect, dict) and isinstance(expect.get(group), dict):
            for k, v in expect[group].items():
                if isinstance(v, list):
                    yield v, ("expect", group, k)


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


def json_schema() -> dict:
    """JSON Schema of a case file (shipped as cases/case.schema.json for editors)."""
    schema = Case.model_json_schema(by_alias=True)
    # `call:` is accepted as a synonym of `clip:` (renamed before validation, see _call_alias)
    props = schema.get("properties", {})
    if "clip" in props:
        props["call"] = dict(props["clip"], description="synonym of clip: the call under test")
        schema["required"] = [r for r in schema.get("required", []) if r != "clip"]
        schema["oneOf"] = [{"required": ["clip"]}, {"required": ["call"]}]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gradclip conformance case"
    return schema
