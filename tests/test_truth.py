"""Verdicts that tell the truth (issue 12): scale-free clipping factors and norms, the most
specific declaration wins a raise, run-to-run stability (``--repeat``), the facts and registry
entries that declare framework behaviour that depends on state."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from conformance import compare, repeat, results
from conformance.classify import classify
from conformance.plan import plan
from conformance.registry import Api, Difference, Mapping, OracleSpec, Param, Registry, Unsupported
from conformance.runner import Runner
from conformance.spec.load import parse_text

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- scale-free factors

def test_a_factor_hidden_by_atol_is_a_problem():
    """1e-20 gradients: every element agrees within atol 1e-5 whether clipped by 0.5 or not at
    all; the clipping factor tells them apart."""
    before = {"w": np.full(4, 1e-20)}
    half = {"w": np.full(4, 0.5e-20)}
    assert not compare.compare_outputs(before, half, 1.3e-6, 1e-5).problems  # what atol hid
    problems = compare.compare_factors(before, before, half, {"w": "float32"}, 1.3e-6)
    assert problems == ["w: clipping factor 1, oracle 0.5 (rtol 1.3e-06; the elements agree within atol only)"]
    assert compare.compare_factors(before, half, half, {"w": "float32"}, 1.3e-6) == []


def test_one_unit_in_the_last_place_is_rounding_not_a_factor():
    """float16 outputs in the subnormal range carry few bits: a last-place difference per element
    (what a coefficient rounded differently gives) is not a different factor; twice as big is."""
    before = {"w": np.array([1000.0, 1500.0, 2000.0])}
    want = {"w": before["w"] * 3.1e-8}  # outputs 3e-5..6e-5: float16 subnormals
    ulp = compare.ulp(want["w"], "float16")
    got = {"w": np.asarray(want["w"] + ulp, dtype=np.float16).astype(np.float64)}
    assert compare.compare_factors(before, got, want, {"w": "float16"}, 1e-3) == []
    assert compare.compare_factors(before, {"w": want["w"] * 2}, want, {"w": "float16"}, 1e-3)


def test_a_networks_factor_is_taken_against_what_each_side_clipped():
    before = {"w": np.array([3.0, 4.0])}
    mine = {"w": np.array([3.0001, 4.0])}  # the framework's own gradients before clipping
    out = {"w": mine["w"] * 0.2}
    assert compare.compare_factors(before, out, {"w": before["w"] * 0.2}, {"w": "float64"}, 1e-7,
                                   got_before=mine) == []


def test_the_returned_norm_is_judged_by_rtol_in_the_cells_dtype():
    tiny = compare.compare_outputs({}, {}, 1.3e-6, 1e-5, got_norm=2e-20, want_norm=1e-20, norm_dtype="float32")
    assert tiny.problems  # atol would have swallowed it
    unrepresentable = compare.compare_outputs({}, {}, 1e-3, 1e-5, got_norm=0.0, want_norm=1e-9, norm_dtype="float16")
    assert not unrepresentable.problems  # 1e-9 is 0 in float16: nothing to hold against it


# --------------------------------------------------------------------------- the declaration that names the error

CASE = """\
id: t
title: t
dtypes: [float16]
devices: [cpu]
grads: {w: [1.0, 2.0]}
clip: {api: torch.f, args: {max_norm: 1.0}}
"""


def _registry(differences=(), unsupported=()) -> Registry:
    params = {"max_norm": Param(required=True)}
    apis = {"torch.f": Api(name="torch.f", framework="torch", signature="f", params=params,
                           oracle=OracleSpec(fn="clip_grad_norm", args={"max_norm": "max_norm"})),
            "paddle.g": Api(name="paddle.g", framework="paddle", signature="g", params=params)}
    return Registry(apis, [Mapping(source="torch.f", target="paddle.g", category="input usage differs",
                                   differences=list(differences), unsupported=list(unsupported))])


def _judge(reg, got, text=CASE):
    """The record the one classification rule gives ``got`` for the one cell of ``text``."""
    (cell,) = plan(parse_text(text, "t.yaml").cases, reg).cells
    prepared = cell.kind.prepare(Runner(reg, pool=None), cell)
    rec = {"status": None, "difference": None, "message": ""}
    classify(cell, prepared.want, got, rec, prepared.hooks)
    return rec


def test_the_declaration_whose_match_is_in_the_message_wins_over_a_generic_gap():
    raised = {"grads": None, "raised": {"type": "ValueError", "message": "norm_type only support [inf, 0, 1, 2]"}}
    generic = Unsupported(when={"dtype": ["float16"]}, reason="no float16 kernel")
    named = Difference(id="norm-types", text="raises for other norm types", variant={"raises": "ValueError"},
                       match="norm_type only support")
    assert _judge(_registry([named], [generic]), raised)["difference"] == "norm-types"
    longer = Unsupported(when={"dtype": ["float16"]}, match="norm_type only support [inf", reason="specific gap")
    rec = _judge(_registry([named], [generic, longer]), raised)
    assert rec["status"] == "unsupported" and rec["message"].startswith("specific gap")
    other = {"grads": None, "raised": {"type": "RuntimeError", "message": "no kernel for Half"}}
    assert _judge(_registry([named], [generic]), other)["message"].startswith("no float16 kernel")


# --------------------------------------------------------------------------- facts and file-level declarations

def test_grads_tiny_says_where_flush_to_zero_decides():
    from conformance.kinds.clipping.cell import KIND

    def fact(values, dtype):
        text = CASE.replace("dtypes: [float16]", f"dtypes: [{dtype}]").replace("[1.0, 2.0]", values)
        (cell,) = plan(parse_text(text, "t.yaml").cases, _registry()).cells
        return KIND.facts(cell)["grads.tiny"]

    assert not fact("[1.0, 2.0]", "float32")
    assert fact("[1.0e-20, 2.0e-20]", "float32")  # their squares are subnormal in float32
    assert fact("[1.0e-40, 2.0e-40]", "float32")  # subnormal themselves
    assert not fact("[1.0e-20, 2.0]", "float32")  # flushing 1e-20 changes nothing that counts
    assert not fact("[1.0e-6, 2.0e-6]", "float32")
    assert not fact("[1.0e-6, 2.0e-6]", "float16")  # subnormal in float16, but deterministic there
    assert not fact("[1.0e-20, 2.0e-20]", "float64")  # normal squares in float64
    assert fact("[1.0e-310, 2.0e-310]", "float64")  # subnormal in float64
    assert not fact("[0.0, 0.0]", "float32")  # zero is not tiny


def test_file_level_gaps_and_varies_join_every_mapping_onto_their_targets(tmp_path):
    from conformance import registry

    body = textwrap.dedent("""\
        apis:
          torch.f:
            framework: torch
            signature: f(max_norm)
            params: {max_norm: {required: true}}
            oracle: {fn: clip_grad_norm, args: {max_norm: max_norm}}
          paddle.g: {framework: paddle, signature: g()}
          paddle.h: {framework: paddle, signature: h()}
        mappings:
          - {source: torch.f, target: paddle.g, category: input usage differs}
          - {source: torch.f, target: paddle.h, category: input usage differs}
        unsupported:
          - {targets: [paddle.g], when: {grads.tiny: [true]}, undefined: true, reason: flushes}
        varies:
          - {targets: [paddle.h], reason: last bit}
        """)
    (tmp_path / "r.yaml").write_text(body)
    reg = registry.load(str(tmp_path))
    g, h = reg.targets("torch.f")
    assert [u.reason for u in g.unsupported] == ["flushes"] and g.varies == []
    assert h.unsupported == [] and [v.reason for v in h.varies] == ["last bit"]
    (tmp_path / "r.yaml").write_text(body.replace("targets: [paddle.h]", "targets: [paddle.hh]"))
    registry.load.cache_clear()
    try:
        registry.load(str(tmp_path))
    except registry.RegistryError as e:
        assert e.problems == [f"{tmp_path}/r.yaml:15: varies[0].targets[0]: paddle.hh is not a registered API "
                              "(did you mean 'paddle.h'?)"]
    else:
        raise AssertionError("an unknown target must not load")


# --------------------------------------------------------------------------- run to run

def test_combine_marks_cells_whose_numbers_change():
    def rec(i, status="match", digest="a", **kw):
        return {"id": i, "status": status, "digest": digest, "message": "", "max_rel_err": 0.0, **kw}

    runs = [[rec("x"), rec("y"), rec("z"), rec("v", varies="declared")],
            [rec("x"), rec("y", digest="b"), rec("z", status="known"), rec("v", digest="b", varies="declared")]]
    got = {r["id"]: r for r in repeat.combine(runs)}
    assert got["x"]["status"] == "match" and got["x"]["repeat"] == {"runs": 2, "statuses": ["match", "match"], "digests": 1}
    assert got["y"]["status"] == "unstable" and "2 different results" in got["y"]["message"]
    assert got["z"]["status"] == "unstable" and "statuses match, known" in got["z"]["message"]
    assert got["v"]["status"] == "match" and "declared: declared" in got["v"]["message"]


def test_repeat_finds_a_framework_whose_numbers_change(tmp_path):
    """The toy framework adds last-bit noise when TOY_NOISE is set: --repeat calls it unstable
    and fails the run; without the noise every cell is stable."""
    (tmp_path / "c.yaml").write_text(CASE.replace("torch.f", "torch.nn.utils.clip_grad_norm_")
                                     .replace("dtypes: [float16]", "dtypes: [float64]")
                                     .replace("devices: [cpu]", "devices: [cpu]\ntargets: [toy.clip_grad_norm]"))
    env = dict(os.environ, CONFORMANCE_FRAMEWORKS_PATH=str(ROOT / "tests" / "toy_framework"), PYTHONPATH=str(ROOT))

    def run(out, **extra):
        r = subprocess.run([sys.executable, "-m", "conformance.cli", "run", "c.yaml", "--backend", "toy", "--repeat",
                            "3", "--out", out, "--no-report"], capture_output=True, text=True, cwd=tmp_path,
                           env=dict(env, **extra), timeout=300)
        return r.returncode, results.load(tmp_path / out / "results.json")["results"][0]

    code, rec = run("quiet")
    assert code == 0 and rec["status"] == "match" and rec["repeat"]["digests"] == 1
    code, rec = run("noisy", TOY_NOISE="1")
    assert code == 1 and rec["status"] == "unstable" and math.isfinite(rec["max_rel_err"])


def test_a_generator_under_expect_is_materialised_not_a_crash():
    """`expect.grads` with `{fill: ...}` validated, then crashed the run (TypeError: FillGen)."""
    from conformance.spec.case import Expect

    e = Expect.model_validate({"grads": {"w": {"fill": 0.5, "shape": [2]}}, "atol": 1e-6})
    assert compare.check_expect([e], {"w": np.array([0.5, 0.5])}, None, False) == []
    assert compare.check_expect([e], {"w": np.array([0.5, 0.6])}, None, False)[0].startswith("expect.grads.w: 1 elements")


# --------------------------------------------------------------------------- asymmetric bounds

def test_a_relation_condition_and_a_fallback_argument_rule():
    from conformance.registry import Condition, Registry
    from conformance.registry.entries import Relation

    sym = Condition(fields={"args.min": Relation(neg_of="args.max")})
    assert sym.holds({"args.min": -0.5, "args.max": 0.5})
    assert not sym.holds({"args.min": -0.2, "args.max": 0.5})
    assert not sym.holds({"args.min": None, "args.max": 0.5})
    assert Condition(fields={"args.min": Relation(neg_of="args.max", or_null=True)}).holds({"args.min": None})
    m = Mapping(source="paddle.nn.ClipGradByValue", target="torch.clamp", category="composite replacement",
                args={"min": {"from": "min", "fallback": {"from": "max", "op": "neg"}}, "max": "max"})
    assert Registry.translate(m, {"max": 0.5, "min": None}) == {"min": -0.5, "max": 0.5}
    assert Registry.translate(m, {"max": 0.5, "min": -0.1}) == {"min": -0.1, "max": 0.5}


def test_asymmetric_bounds_are_never_held_against_a_symmetric_target():
    """mindspore.ops.clip_by_value(-0.2, 0.7) mapped to torch's clip_grad_value_ (+-0.7) was a
    false mismatch: that target cannot express the call, whatever it returns."""
    from conformance import registry

    reg = registry.load()
    text = textwrap.dedent("""\
        id: a
        title: t
        devices: [cpu]
        grads: {w: [0.3, -1.4, 2.2]}
        clip: {api: mindspore.ops.clip_by_value, args: {clip_value_min: -0.2, clip_value_max: 0.7}}
        targets: [torch.nn.utils.clip_grad_value_]
        sweep:
          clip.args.clip_value_min: [-0.2, -0.7]
        """)
    cells = plan(parse_text(text, "a.yaml").cases, reg).cells
    runner = Runner(reg, pool=None)
    clipped_as_torch_does = {"grads": {"w": np.array([0.3, -0.7, 0.7])}, "raised": None}
    verdicts = {}
    for cell in cells:
        prepared = cell.kind.prepare(runner, cell)
        rec = {"status": None, "difference": None, "message": ""}
        classify(cell, prepared.want, clipped_as_torch_does, rec, prepared.hooks)
        verdicts[cell.args["clip_value_min"]] = rec["status"]
    assert verdicts == {-0.2: "unsupported", -0.7: "match"}


# --------------------------------------------------------------------------- unsupported reasons

def test_the_audit_of_unsupported_reasons_finds_a_reason_that_does_not_fit():
    """tests/verdict_audit.py, which checks every unsupported cell of the bundled run (in the
    browser env), fails where it must: a Paddle float16 cell that raised "norm_type only support"
    shown with the generic float16 kernel gap, a reason no declaration has, and a gap without
    `undefined` on a cell that returned."""
    from verdict_audit import planned_cells, unsupported_problems

    cell_id = "found-08cd99c0c7e8[paddle.nn.utils.clip_grad_norm_-float16-cpu]"
    cells = planned_cells([ROOT / "cases" / "found"])
    cell = cells[cell_id]
    raised = "ValueError: norm_type only support [inf, 0, 1, 2], but got 3.5"
    specific = next(u for u in cell.mapping.unsupported if u.match == "norm_type only support")
    generic = next(u for u in cell.mapping.unsupported if u.match == "is not registered" and u.applies(cell.facts()))

    def audit(message):
        return unsupported_problems({"results": [{"id": cell_id, "status": "unsupported", "message": message}]},
                                    cells)

    assert audit(f"{specific.reason} ({raised})") == []
    wrong = audit(f"{generic.reason} ({raised})")
    assert len(wrong) == 1 and "does not fit the raised" in wrong[0]
    both = "RuntimeError: kernel `p_norm` is not registered; norm_type only support [inf, 0, 1, 2]"
    wrong = audit(f"{generic.reason} ({both})")
    assert len(wrong) == 1 and "names the raised error more closely" in wrong[0]
    assert "no declared gap" in audit(f"no kernel anywhere ({raised})")[0]
    assert "not `undefined`" in audit(f"{generic.reason} (agreed with the oracle this time)")[0]


# --------------------------------------------------------------------------- summation order

def _lanes8_reference(values, dtype=np.float32):
    """torch's CPU float32 L2 sum order as docs/matrix_evidence/accumulation.py found it,
    written as plain loops (an independent statement of oracle._sum's "lanes8")."""
    values = [dtype(v) for v in values]
    whole = len(values) // 8 * 8
    lanes = [dtype(0)] * 8
    for i in range(whole):
        lanes[i % 8] = dtype(lanes[i % 8] + values[i])
    width = 8
    while width > 1:
        width //= 2
        lanes = [dtype(lanes[k] + lanes[k + width]) for k in range(width)]
    total = lanes[0]
    for v in values[whole:]:
        total = dtype(total + v)
    return float(total)


def test_summation_orders_against_plain_loops():
    from conformance.kinds.clipping.oracle import _sum

    rng = np.random.default_rng(7)
    for n in (1, 7, 8, 9, 1000, 4099):
        terms = rng.standard_normal(n).astype(np.float32).astype(np.float64) ** 2
        terms = terms.astype(np.float32).astype(np.float64)
        sequential = np.float32(0)
        for t in terms:
            sequential = np.float32(sequential + np.float32(t))
        assert _sum(terms, "float32", "sequential") == float(sequential)
        assert _sum(terms, "float32", "lanes8") == _lanes8_reference(terms)
        assert _sum(terms, "float32", "exact") == float(np.float32(math.fsum(terms)))
    # the orders differ where it matters: 1e8 swallows the ones added to it one by one
    big = [1e8] + [1.0] * 15
    assert _sum(big, "float32", "sequential") == 1e8
    assert _sum(big, "float32", "exact") == float(np.float32(1e8 + 15))
    assert _sum(big, "float32", "lanes8") == _lanes8_reference(big) != 1e8


SIZED = """\
id: t
title: t
dtypes: [float32]
devices: [cpu]
grads: {w: {random: normal, shape: [200000], seed: 1}, b: {random: normal, shape: [300], seed: 2}}
clip: {api: torch.f, args: {max_norm: 1.0}}
"""


def test_a_target_s_summation_order_composes_with_a_difference():
    """A target that clips per tensor (a declared difference) and sums its squares one by one in
    float32 (declared `numerics`): neither alone reproduces its numbers on 200,000 elements,
    the two together do, and the verdict names the difference and the arithmetic."""
    from conformance.kinds.clipping import oracle
    from conformance.kinds.clipping.cell import build_inputs

    case = parse_text(SIZED, "t.yaml").cases[0].case
    inputs = build_inputs(case, "float32")
    grads = [inputs.grads[n] for n in inputs.names]
    target = oracle.clip_grad_norm(grads, 1.0, scope="per_tensor", sum_dtype="float32", accumulate="float32",
                                   summation="sequential")
    got = {"grads": dict(zip(inputs.names, target.grads)), "raw_grads": None, "returned": None, "raised": None}
    per_tensor = Difference(id="per-tensor", text="clips each tensor by its own norm", variant={"scope": "per_tensor"})
    sequential = Difference(id="seq-sum", text="sums one element after another in float32",
                            variant={"sum_dtype": "input", "accumulate": "input", "summation": "sequential"})

    def judge(differences, numerics):
        reg = _sized_registry(differences, numerics)
        (cell,) = plan(parse_text(SIZED, "t.yaml").cases, reg).cells
        prepared = cell.kind.prepare(Runner(reg, pool=None), cell)
        rec = {"status": None, "difference": None, "message": ""}
        classify(cell, prepared.want, got, rec, prepared.hooks)
        return rec

    assert judge([per_tensor], [])["status"] == "mismatch"
    assert judge([], [sequential])["status"] == "mismatch"
    rec = judge([per_tensor], [sequential])
    assert (rec["status"], rec["difference"]) == ("known", "per-tensor")
    assert "computed as seq-sum" in rec["message"]


def _sized_registry(differences, numerics) -> Registry:
    reg = _registry(differences)
    (m,) = reg.mappings
    return Registry(reg.apis, [m.model_copy(update={"numerics": list(numerics)})])


# --------------------------------------------------------------------------- expect: agree, clip.form

def _judge_text(reg, text, got):
    return _judge(reg, got, text)


def test_agree_makes_a_declared_difference_a_mismatch_that_names_it():
    """torch's clip of [1, 2] to norm 1 is [0.447, 0.894]; a target that clips with max_norm
    halved is `known` by its declaration, and `mismatch` naming it once the case requires the
    target to agree; a target that does what the source does stays `match`."""
    halved = Difference(id="halves-max-norm", text="clips to half the norm", variant={"max_norm": 0.5})
    reg = _registry([halved])
    s = 1 / math.sqrt(5)
    got_halved = {"grads": {"w": np.array([0.5 * s, s])}, "raised": None, "returned": None}
    got_same = {"grads": {"w": np.array([s, 2 * s])}, "raised": None, "returned": None}
    assert _judge_text(reg, CASE, got_halved)["status"] == "known"
    strict = CASE + "expect: {api: paddle.g, agree: true}\n"
    rec = _judge_text(reg, strict, got_halved)
    assert rec["status"] == "mismatch" and rec["required"] == "agree"
    assert rec["declared"] == {"status": "known", "difference": "halves-max-norm"}
    assert "expect.agree: paddle.g must do what torch.f does" in rec["message"]
    assert "halves-max-norm" in rec["message"]
    assert _judge_text(reg, strict, got_same)["status"] == "match"
    # an agree entry asserts no raise state of its own: the source's raise is still matched
    gap = Unsupported(when={"dtype": ["float16"]}, reason="no float16 kernel")
    raised = {"grads": None, "raised": {"type": "RuntimeError", "message": "no kernel for Half"}}
    rec = _judge_text(_registry([], [gap]), strict, raised)
    assert (rec["status"], rec["declared"]["status"]) == ("mismatch", "unsupported")
    assert "no float16 kernel" in rec["message"]


def test_agree_holds_only_for_the_targets_it_names(tmp_path):
    halved = Difference(id="halves-max-norm", text="clips to half the norm", variant={"max_norm": 0.5})
    s = 1 / math.sqrt(5)
    got = {"grads": {"w": np.array([0.5 * s, s])}, "raised": None, "returned": None}
    reg = _registry([halved])
    other = Api(name="paddle.h", framework="paddle", signature="h", params=reg.apis["paddle.g"].params)
    reg = Registry({**reg.apis, "paddle.h": other},
                   [*reg.mappings, Mapping(source="torch.f", target="paddle.h", category="input usage differs")])
    text = CASE.replace("clip: {", "targets: [paddle.g]\nclip: {") + "expect: {api: paddle.h, agree: true}\n"
    assert _judge_text(reg, text, got)["status"] == "known"


def test_a_bare_tensor_call_reaches_the_targets_that_take_one():
    """`clip.form: tensor`: the source must take a bare Tensor (else a validation error at
    clip.form), exactly one gradient is given, and each target that takes one gets the form
    (the others a one-element list)."""
    reg = _registry()
    with_form = {**reg.apis, "torch.f": reg.apis["torch.f"].model_copy(update={"forms": ["list", "tensor"]})}
    text = CASE.replace("clip: {api: torch.f,", "clip: {form: tensor, api: torch.f,")
    errors = plan(parse_text(text, "t.yaml").cases, reg).errors
    assert [str(e) for e in errors] == ["t.yaml:6: clip.form: torch.f takes the gradients as list, not as 'tensor'"]
    (cell,) = plan(parse_text(text, "t.yaml").cases, Registry(with_form, reg.mappings)).cells
    assert cell.form == "list" and cell.facts()["form"] == "list"  # paddle.g takes a list only
    both = {**with_form, "paddle.g": reg.apis["paddle.g"].model_copy(update={"forms": ["list", "tensor"]})}
    (cell,) = plan(parse_text(text, "t.yaml").cases, Registry(both, reg.mappings)).cells
    assert cell.form == "tensor"
    assert cell.kind.prepare(Runner(Registry(both, reg.mappings), pool=None), cell).job["form"] == "tensor"
    two = parse_text(text.replace("grads: {w: [1.0, 2.0]}", "grads: {w: [1.0], b: [2.0]}"), "t.yaml")
    assert [(e.line, e.field) for e in two.errors] == [(6, "clip.form")]
    assert "exactly one gradient" in str(two.errors[0])


def test_tensor_arguments_validate_translate_and_reach_the_oracle_in_their_dtype():
    """`{tensor: 0.3, dtype: float16}`: refused where the API takes numbers only (path:line),
    kept for a target that takes a Tensor there, its (float16-rounded) number for one that does
    not, negated inside by `op: neg`; the oracle clamps at 0.300048828125, not 0.3."""
    from conformance.kinds.clipping.cell import oracle_call

    bound = {"tensor": 0.3, "dtype": "float16"}
    takes = Param(default=None, accepts="number", tensor=True)
    plain = Param(default=None, accepts="number")
    assert takes.refuses(bound) is None and "does not take a Tensor" in plain.refuses(bound)
    assert "holds one number" in takes.refuses({"tensor": [0.3, 0.4]})
    assert "dtype 'int8'" in takes.refuses({"tensor": 0.3, "dtype": "int8"})
    src = Api(name="ms.v", framework="ms", signature="v", params={"lo": takes, "hi": takes},
              oracle=OracleSpec(fn="clip_grad_value", args={"min": "lo", "max": "hi"}))
    tensor_target = Api(name="torch.c", framework="torch", signature="c", params={"min": takes, "max": takes})
    number_target = Api(name="torch.v", framework="torch", signature="v", params={"clip_value": plain})
    m1 = Mapping(source="ms.v", target="torch.c", category="only parameter names differ", args={"min": "lo", "max": "hi"})
    m2 = Mapping(source="ms.v", target="torch.v", category="input usage differs",
                 args={"clip_value": {"from": "lo", "op": "neg"}})
    reg = Registry({"ms.v": src, "torch.c": tensor_target, "torch.v": number_target}, [m1, m2])
    assert reg.target_args(m1, {"lo": bound, "hi": None}) == {"min": bound, "max": None}
    assert reg.target_args(m2, {"lo": bound, "hi": None}) == {"clip_value": -0.300048828125}
    want = oracle_call(src, {"lo": bound, "hi": None}, [np.array([0.1, 0.3, 0.5])], "float32")
    assert want.grads[0].tolist() == [0.300048828125, 0.300048828125, 0.5]
    want = oracle_call(src, {"lo": {"tensor": [0.3]}, "hi": None}, [np.array([0.1])], "float32")
    assert want.grads[0].tolist() == [float(np.float32(0.3))]  # no dtype: the cell's
    text = CASE.replace("args: {max_norm: 1.0}", "args: {max_norm: {tensor: 1.0}}")
    errors = plan(parse_text(text, "t.yaml").cases, _registry()).errors
    assert [(e.line, e.field) for e in errors] == [(6, "clip.args.max_norm")]
    assert "does not take a Tensor" in str(errors[0])


def test_numerics_explain_a_return_where_the_source_raises():
    """torch raises for a NaN inf-norm with error_if_nonfinite=True; a target whose inf-norm
    skips a NaN tensor's norm (MindSpore's graph mode: numerics with max_nan: outer_ignore)
    returns clipped numbers: `known` by its numerics, `mismatch` without them."""
    from conformance.kinds.clipping import oracle

    params = {"max_norm": Param(required=True), "norm_type": Param(default=2.0),
              "error_if_nonfinite": Param(default=False)}
    spec = OracleSpec(fn="clip_grad_norm", args={k: k for k in params})
    apis = {"torch.f": Api(name="torch.f", framework="torch", signature="f", params=params, oracle=spec),
            "paddle.g": Api(name="paddle.g", framework="paddle", signature="g", params=params)}
    skip = Difference(id="skips-nan-tensors", text="the max over tensors skips NaN norms",
                      variant={"max_nan": "outer_ignore"})
    text = ("id: t\ntitle: t\ndtypes: [float64]\ndevices: [cpu]\ngrads: {w: [2.0, .nan, -3.0], b: [1.0, 0.5]}\n"
            "clip: {api: torch.f, args: {max_norm: 1.0, norm_type: .inf, error_if_nonfinite: true}}\n")
    grads = [np.array([2.0, math.nan, -3.0]), np.array([1.0, 0.5])]
    clipped = oracle.clip_grad_norm(grads, 1.0, math.inf, max_nan="outer_ignore").grads
    got = {"grads": {"w": clipped[0], "b": clipped[1]}, "raised": None, "returned": None}

    def judge(numerics):
        m = Mapping(source="torch.f", target="paddle.g", category="identity", numerics=numerics)
        return _judge(Registry(apis, [m]), got, text)

    assert judge([])["status"] == "mismatch"
    rec = judge([skip])
    assert (rec["status"], rec["difference"]) == ("known", "skips-nan-tensors")
    assert rec["message"].startswith("returned where the source raises RuntimeError")


# --------------------------------------------------------------------------- a network's factor

MODEL_CASE = """\
id: net
title: net
dtypes: [float32]
devices: [cpu]
model:
  layers:
    - {type: linear, in: 3, out: 2, weight: {random: normal, shape: [2, 3], seed: 7, std: 0.5}}
  loss: {type: mse}
  inputs: {random: normal, shape: [4, 3], seed: 8}
  targets: {random: normal, shape: [4, 2], seed: 9}
clip: {api: torch.f, args: {max_norm: 0.05}}
"""


def test_a_networks_factor_is_judged_on_the_frameworks_own_gradients():
    """A per-tensor clip of the framework's own gradients, whose one bias norm is 2e-6 off the
    oracle's (over rtol 1.3e-6, as MindSpore's was), is the declared per-tensor difference; the
    same clip with a factor 1e-5 off (an epsilon), whose elements still agree within atol, is not."""
    from conformance.kinds.clipping.cell import build_inputs
    from conformance.kinds.clipping.oracle import clip_grad_norm

    per_tensor = Difference(id="per-tensor", text="clips each gradient by its own norm",
                            variant={"scope": "per_tensor", "eps": 0.0})
    reg = _registry([per_tensor])
    (cell,) = plan(parse_text(MODEL_CASE, "net.yaml").cases, reg).cells
    inputs = build_inputs(cell.case, "float32")
    own = dict(inputs.grads)
    own["0.bias"] = own["0.bias"] * (1 + 2e-6)  # rounding of the framework's own backward
    assert compare.compare_outputs(own, inputs.grads, 1.3e-6, 1e-5).ok

    def got(eps):
        out = clip_grad_norm([own[n] for n in inputs.names], 0.05, scope="per_tensor", eps=eps)
        return {"grads": dict(zip(inputs.names, out.grads)), "raw_grads": own, "returned": None}

    assert _judge(reg, got(0.0), MODEL_CASE)["status"] == "known"
    bias_norm = float(np.linalg.norm(own["0.bias"]))
    rec = _judge(reg, got(1e-5 * bias_norm), MODEL_CASE)
    assert rec["status"] == "mismatch" and "0.bias: clipping factor" in rec["message"]
