"""conformance.casegen: generated case files round-trip exactly through spec and tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance import casegen, registry, tensors
from conformance.kinds.clipping.cell import build_inputs
from conformance.spec.load import parse_text


def _same(a, b) -> bool:
    """Bit-for-bit equal float64 arrays (NaN == NaN, -0.0 != 0.0), same shape."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@given(st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True))
def test_format_float_round_trips_through_safe_loader(x):
    text = casegen.format_float(x)
    back = yaml.safe_load(f"v: {text}")["v"]
    assert isinstance(back, float), (x, text, back)
    assert _same(back, x), (x, text, back)


@pytest.mark.parametrize("x, text", [(1e-08, "1.0e-08"), (1e20, "1.0e+20"), (5e-324, "5.0e-324"),
                                     (-0.0, "-0.0"), (0.1, "0.1"), (math.nan, ".nan"),
                                     (math.inf, ".inf"), (-math.inf, "-.inf"), (65504.0, "65504.0")])
def test_format_float_literals(x, text):
    assert casegen.format_float(x) == text


shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)


@given(hnp.arrays(np.float64, shapes, elements=st.floats(allow_nan=True, allow_infinity=True)),
       st.sampled_from(tensors.FLOAT_DTYPES))
def test_case_text_round_trips_gradients_exactly(a, dtype):
    """What ran IS the printed file: parsing the text and materialising it (as the runner does)
    gives back the generated gradients bit for bit, shape included (0-d and empty ones)."""
    g = tensors.round_to(a, dtype)
    text = casegen.case_text(api="torch.nn.utils.clip_grad_norm_", grads={"w": g, "none": None},
                             args={"max_norm": 0.5, "norm_type": math.inf, "error_if_nonfinite": False},
                             dtype=dtype)
    loaded = parse_text(text, "gen.yaml")
    assert not loaded.errors, text
    case = loaded.cases[0].case
    inputs = build_inputs(case, dtype)
    assert _same(inputs.grads["w"], g), text
    assert inputs.grads["none"] is None
    assert case.dtypes == [dtype] and case.devices == ["cpu"]
    assert case.clip.args == {"max_norm": 0.5, "norm_type": math.inf, "error_if_nonfinite": False}


@given(st.dictionaries(st.sampled_from(["max_norm", "norm_type", "clip_value", "min", "max"]),
                       st.one_of(st.floats(), st.none(), st.booleans(), st.integers(-10, 10)), max_size=4))
def test_args_round_trip(args):
    back = yaml.safe_load(f"a: {casegen.format_mapping(args)}")["a"]
    assert list(back) == list(args)
    for k, v in args.items():
        assert type(back[k]) is type(v) and (back[k] == v or (v != v and back[k] != back[k]))


def test_case_id_is_a_stable_content_hash():
    g = {"w": np.array([1.0, -2.0])}
    t1 = casegen.case_text(api="torch.nn.utils.clip_grad_value_", args={"clip_value": 1.0}, grads=g,
                           dtype="float32")
    t2 = casegen.case_text(api="torch.nn.utils.clip_grad_value_", args={"clip_value": 1.0}, grads=g,
                           dtype="float32")
    t3 = casegen.case_text(api="torch.nn.utils.clip_grad_value_", args={"clip_value": 2.0}, grads=g,
                           dtype="float32")
    assert t1 == t2 and t1 != t3
    ids = [parse_text(t).cases[0].case.id for t in (t1, t3)]
    assert ids[0] != ids[1] and all(i.startswith("found-") for i in ids)


def test_empty_shapes_a_list_cannot_carry_use_a_fill_generator():
    assert casegen.format_tensor(np.zeros((0, 3))) == "{fill: 0.0, shape: [0, 3]}"
    assert casegen.format_tensor(np.zeros((2, 0))) == "[[], []]"
    assert casegen.format_tensor(np.zeros((0,))) == "[]"
    assert casegen.format_tensor(np.array(-0.0)) == "-0.0"
    assert casegen.format_tensor(None) == "null"


def test_targets_restrict_the_planned_cells():
    text = casegen.case_text(api="mindspore.ops.clip_by_value",
                             args={"clip_value_min": -1.0, "clip_value_max": 0.5},
                             grads={"w": np.array([2.0])}, dtype="float32", targets=["torch.clamp"])
    from conformance.plan import plan

    loaded = parse_text(text)
    p = plan(loaded.cases, registry.load(), device="cpu")
    assert not loaded.errors and not p.errors
    assert {c.api for c in p.cells} == {"torch.clamp"}


def test_run_text_refuses_an_invalid_case():
    class _Runner:
        registry = registry.load()

        def run(self, cell):  # pragma: no cover - never reached
            raise AssertionError("ran a cell of an invalid case")

    text = casegen.case_text(api="torch.nn.utils.clip_grad_norm_", args={"max_nrm": 1.0},
                             grads={"w": np.array([1.0])}, dtype="float32")
    with pytest.raises(ValueError, match=r"<generated>:\d+: clip.args.max_nrm: .*did you mean 'max_norm'"):
        casegen.run_text(text, _Runner(), backends={"torch"})


def test_failure_message_carries_the_case_file():
    text = casegen.case_text(api="torch.nn.utils.clip_grad_value_", args={"clip_value": 1.0},
                             grads={"w": np.array([3.0])}, dtype="float64")
    rec = {"status": "mismatch", "api": "torch.nn.utils.clip_grad_value_", "backend": "torch",
           "dtype": "float64", "device": "cpu", "source_api": "torch.nn.utils.clip_grad_value_",
           "path": "<generated>:1", "message": "w: 1/1 elements differ", "max_abs_err": 2.0,
           "max_rel_err": 2.0, "mismatched": 1}
    msg = casegen.failure_message(text, [rec])
    assert casegen.case_from_message(msg) == text
    assert "MISMATCH: torch.nn.utils.clip_grad_value_ (torch, float64, cpu)" in msg
    assert casegen.failures([rec, dict(rec, status="known"), dict(rec, status="error")]) == [
        rec, dict(rec, status="error")]
