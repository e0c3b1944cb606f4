"""Tensor values of case files: a number, a nested list, or a generator mapping
(``{random: ...}``, ``{fill: ...}``, ``{arange: ...}``), as pydantic models. ``tensors``
materialises them; nothing is evaluated."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

import math

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationInfo, model_validator

from .limits import DEFAULT, Limits

Dtype = Literal["float64", "float32", "float16", "bfloat16"]
Device = Literal["cpu", "gpu"]
#: how a target runs: eagerly, or compiled (torch.compile(fullgraph=True), ...: docs/modes.md)
Mode = Literal["eager", "compiled"]
#: a parameter or gradient name (``weight``, ``0.bias``, ``fc.weight``): it reaches generated
#: code (reproduction snippets), so nothing else is accepted
PARAM_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.]*$"
ParamName = Annotated[str, Field(pattern=PARAM_NAME)]
#: the keys that make a mapping a generator (one of them, with its own fields)
GENERATOR_KEYS = ("random", "fill", "arange")


class Strict(BaseModel):
    """Every model of a case file: unknown keys are errors, ``in`` may be written ``in_``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


PutEntry = Annotated[list[Union[int, float]], Field(min_length=1)]


class _Gen(Strict):
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
    def _size(self, info: ValidationInfo):
        """Within the limits (``spec.limits``): rank and element count of the generated tensor,
        a finite scale."""
        check_size(self.shape, limits_of(info))
        if not math.isfinite(self.scale):
            raise ValueError(f"scale must be a finite number, got {self.scale!r}")
        return self

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
        for name in ("mean", "std", "low", "high"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.std < 0:
            raise ValueError(f"std must not be negative, got {self.std!r}")
        if self.random == "randint":
            if self.low is None or self.high is None:
                raise ValueError("randint needs low and high")
            if not self.low < self.high:
                raise ValueError(f"randint needs low < high (high is exclusive), got {self.low!r} and {self.high!r}")
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

    @model_validator(mode="after")
    def _range(self, info: ValidationInfo):
        start, stop = self.arange
        if not (math.isfinite(start) and math.isfinite(stop)):
            raise ValueError(f"arange needs finite start and stop, got {self.arange!r}")
        n = max(0, math.ceil(stop - start))
        check_size([n], limits_of(info))
        if self.shape and math.prod(self.shape) != n:
            raise ValueError(f"arange {self.arange!r} gives {n} values, shape {self.shape} holds {math.prod(self.shape)}")
        return self


def limits_of(info: Optional[ValidationInfo]) -> Limits:
    """The limits a validation runs under (``model_validate(..., context={"limits": ...})``)."""
    return ((info.context if info is not None else None) or {}).get("limits", DEFAULT)


def check_size(shape, limits: Limits) -> None:
    """A tensor of ``shape`` within the limits of rank and element count, else ValueError."""
    if len(shape) > limits.tensor_rank:
        raise ValueError(f"a tensor of {len(shape)} dimensions (limit tensor_rank={limits.tensor_rank})")
    if math.prod(shape) > limits.tensor_elements:
        raise ValueError(f"a tensor of shape {list(shape)}: {math.prod(shape)} elements "
                         f"(limit tensor_elements={limits.tensor_elements})")


def _check_nested(v: Any, info: ValidationInfo) -> Any:
    """A nested list must be rectangular, hold numbers only (YAML .nan/.inf are numbers), and
    stay within the limits of rank and size."""

    def shape_of(x, where):
        if isinstance(x, list):
            shapes = {shape_of(e, f"{where}[{i}]") for i, e in enumerate(x)}
            if len(shapes) > 1:
                raise ValueError(f"ragged nested list at {where or 'top level'}")
            return (len(x),) + (shapes.pop() if shapes else ())
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise ValueError(f"expected a number at {where or 'top level'}, got {x!r}")
        return ()

    check_size(shape_of(v, ""), limits_of(info))
    return v


def _tensor_kind(v: Any) -> Optional[str]:
    if isinstance(v, dict):
        for key in GENERATOR_KEYS:
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
        Annotated[list, AfterValidator(_check_nested), Tag("list")],
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

