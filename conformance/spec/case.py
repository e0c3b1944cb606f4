"""A case: the call under test, its inputs (each kind of case adds its own block, see
``conformance/kinds``), dtypes, devices, sweep, expectations and tolerances; and the sweep's
expansion into variants. The kind of a case is decided here, once, when it is validated."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, Field, PrivateAttr, create_model, field_validator, model_validator

from .. import kinds
from .locations import suggest
from .models import Model
from .values import Device, Dtype, Mode, ParamName, Strict, TensorValue

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
API_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*$"
ApiName = Annotated[str, Field(pattern=API_PATTERN)]


class Clip(Strict):
    api: Annotated[str, Field(pattern=API_PATTERN)]
    args: dict[str, Any] = {}
    # how the gradients are passed: a list (or tuple) of them, or one bare Tensor (`tensor`:
    # `clip_grad_norm_(p)`; a case with exactly one gradient). A target API that takes only a
    # list is called with a one-element list (the registry's `forms:` say which take a Tensor).
    form: Literal["list", "tensor"] = "list"


class Expect(Strict):
    """Literal numbers a case asserts, as the test it comes from does (docs/expect.md).

    ``expect:`` is one entry or a list of them; an entry with ``api:`` holds for those target
    APIs only, one without for every target. Every entry that applies to a cell must hold. A
    number is close when ``|got - want| <= atol + rtol * |want|``. With ``raises: true``,
    ``grads:`` are the gradients after the raise (``unchanged``: as they were before the call)."""

    api: Optional[Union[ApiName, list[ApiName]]] = None
    total_norm: Optional[float] = None
    grads: Optional[Union[Literal["unchanged"], dict[ParamName, Optional[TensorValue]]]] = None
    values: Optional[dict[ParamName, TensorValue]] = None  # derivation: returned outputs (value, aux) by name
    rtol: Annotated[float, Field(ge=0)] = 0.0
    atol: Annotated[float, Field(ge=0)] = 1e-6
    raises: bool = False
    # true: the targets this entry holds for must do what the source does. A declared
    # difference (`known`) or gap (`unsupported`) fails the cell as `mismatch`, with the
    # declaration named. Without an explicit `raises:`, such an entry asserts no raise state.
    agree: bool = False

    @field_validator("grads", mode="before")
    @classmethod
    def _grads_form(cls, v):
        if v is not None and not isinstance(v, dict) and v != "unchanged":
            raise ValueError(f"`unchanged` or a mapping of gradient names to values, not {v!r}")
        return v

    def apis(self) -> list[str]:
        """The target APIs this entry names (empty: every target)."""
        return [] if self.api is None else [self.api] if isinstance(self.api, str) else list(self.api)

    def holds_for(self, api: str) -> bool:
        return self.api is None or api in self.apis()

    def checks_raises(self) -> bool:
        """Whether this entry asserts that the call raises or returns (an ``agree`` entry only
        when it says ``raises:``)."""
        return not self.agree or "raises" in self.model_fields_set


class Tolerance(Strict):
    rtol: Annotated[float, Field(ge=0)]
    atol: Annotated[float, Field(ge=0)]
    reason: Annotated[str, Field(min_length=3)]


SWEEP_KEYS = ("dtypes", "devices")


def _sweep_key(key: str) -> str:
    if key not in SWEEP_KEYS and (not key.startswith("clip.args.") or key == "clip.args."):
        hint = suggest(key, ["clip.args.NAME", *SWEEP_KEYS])
        raise ValueError(f"sweep key {key!r} is not one of clip.args.NAME, dtypes, devices{hint}")
    return key


BLOCKS = kinds.blocks()
#: every field a case may take its numbers from, in the kinds' order (exactly one is given)
INPUTS = tuple(dict.fromkeys(f for b in BLOCKS.values() for f in b.inputs))


def _spelled(names) -> str:
    names = [f"`{n}:`" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


#: the case-file format this suite reads (CHANGELOG.md): a file may say `format: 1`
CASE_FORMAT = 1


def _format(v: int) -> int:
    if v > CASE_FORMAT:
        raise ValueError(f"this file is case format {v}; this suite reads format {CASE_FORMAT} and older "
                         "(upgrade gradclip-conformance)")
    return v


class CaseBase(Strict):
    """The fields every kind of case shares; ``Case`` adds each kind's block."""

    format: Annotated[int, Field(ge=1), AfterValidator(_format)] = CASE_FORMAT
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    title: str
    source: str = ""
    tags: list[str] = []
    dtypes: Annotated[list[Dtype], Field(min_length=1)] = ["float32"]
    devices: Annotated[list[Device], Field(min_length=1)] = ["cpu", "gpu"]
    # the modes this case may run in (where the framework can compile the kind; `--mode` picks)
    modes: Annotated[list[Mode], Field(min_length=1)] = ["eager", "compiled"]
    model: Optional[Model] = None  # a network each framework differentiates (clipping, training)
    clip: Clip
    targets: Optional[list[str]] = None  # restrict to these target APIs (default: all mapped)
    sweep: dict[Annotated[str, AfterValidator(_sweep_key)], Annotated[list[Any], Field(min_length=1)]] = {}
    expect: list[Expect] = []  # one entry (a mapping) or a list; see Expect
    tolerance: dict[Dtype, Tolerance] = {}
    _kind: str = PrivateAttr(default="")

    @property
    def kind(self) -> str:
        """The kind of this case (a folder of ``conformance/kinds``), decided at validation."""
        return self._kind

    @field_validator("expect", mode="before")
    @classmethod
    def _one_expect(cls, v):
        """``expect: {...}`` is a list of one entry (its errors keep the mapping's locations)."""
        return [v] if isinstance(v, dict) else v

    def expectations(self, api: str) -> list[Expect]:
        """The ``expect`` entries that hold for target ``api``."""
        return [e for e in self.expect if e.holds_for(api)]

    def must_agree(self, api: str) -> bool:
        """Whether an ``expect`` entry with ``agree: true`` holds for target ``api``."""
        return any(e.agree for e in self.expectations(api))

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
                                     f"{', '.join(dtypes)}{suggest(key, dtypes)}; write "
                                     "`tolerance: {float16: {rtol: ..., atol: ..., reason: ...}}`")
        return v

    @model_validator(mode="after")
    def _decide_kind(self):
        """Exactly one input field; the kind is the one whose mark the case gives (else the
        default kind, the one without marks)."""
        if [getattr(self, f) is not None for f in INPUTS].count(True) != 1:
            raise ValueError(f"exactly one of {_spelled(INPUTS)} is required")
        marked = [k for k, b in BLOCKS.items() if any(getattr(self, m) is not None for m in b.marks)]
        if len(marked) > 1:
            raise ValueError(f"a case is of one kind: give one of "
                             f"{_spelled([m for k in marked for m in BLOCKS[k].marks])}")
        self._kind = marked[0] if marked else next(k for k, b in BLOCKS.items() if not b.marks)
        return self

    @model_validator(mode="after")
    def _sweep_values(self):
        for key in ("dtypes", "devices"):
            allowed = Dtype.__args__ if key == "dtypes" else Device.__args__
            bad = [x for x in self.sweep.get(key, []) if x not in allowed]
            if bad:
                raise ValueError(f"sweep {key}: {bad} not in {list(allowed)}")
        return self

    def problems(self) -> list:
        """The kind's checks of the whole case: ``[(location, text)]``."""
        return BLOCKS[self.kind].check(self)

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


#: the case model: the shared fields plus every kind's block
Case = create_model("Case", __base__=CaseBase,
                    **{name: spec for b in BLOCKS.values() for name, spec in b.fields.items()})


@dataclass
class Variant:
    """One sweep combination of a case: its source-API args and the dtypes/devices to run."""

    case: Any
    args: dict
    dtypes: list
    devices: list
    sweep: dict = field(default_factory=dict)

    def label(self) -> str:
        return "-".join(f"{k}={format_value(v)}" for k, v in self.sweep.items())


def format_value(v: Any) -> str:
    if isinstance(v, dict) and "tensor" in v:  # a tensor argument: tensor(0.1,float16)
        inner = v["tensor"]
        inner = f"[{','.join(map(format_value, inner))}]" if isinstance(inner, list) else format_value(inner)
        return f"tensor({inner}{',' + v['dtype'] if v.get('dtype') else ''})"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if math.isnan(v):
            return "nan"
        return repr(v)
    return str(v)
