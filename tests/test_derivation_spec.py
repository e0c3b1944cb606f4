"""Derivation case files: the ``function:`` block's errors as ``path:line: field: problem``, the
``call:`` synonym of ``clip:``, argument translation between derivation APIs, and planning."""

import textwrap

import pytest

from conformance import registry
from conformance.kinds.derivation import args as derive_args
from conformance.plan import plan

SEED_FN = """\
function:
  inputs: {x: [[1, 2, 3]], y: 19}
  weights: {fc.weight: [[2, 3, 4]]}
  ops:
    - {op: linear, args: [x, fc.weight], out: fc}
    - {op: squeeze, args: [fc], out: logits}
    - {op: mse, args: [logits, y], out: loss}
  outputs: [loss, logits]
"""


def case_text(call="call:\n  api: mindspore.grad\n  args: {grad_position: 0, has_aux: true}\n",
              fn=SEED_FN, head="id: c\ntitle: t\n"):
    return head + fn + call


def errors(text):
    return [str(e) for e in parse_text(text, "f.yaml").errors]


@pytest.fixture(scope="module")
def reg():
    return registry.load()


def test_a_valid_derivation_case_loads_with_call_as_a_synonym_of_clip():
    res = parse_text(case_text(), "f.yaml")
    assert not res.errors
    c = res.cases[0].case
    assert c.clip.api == "mindspore.grad" and c.clip.args == {"grad_position": 0, "has_aux": True}
    assert list(c.function.inputs) == ["x", "y"] and c.function.outputs == ["loss", "logits"]
    assert res.cases[0].lines[("clip", "api")] == 12  # line numbers follow the synonym


def test_function_problems_point_at_their_line_and_field():
    fn = textwrap.dedent("""\
        function:
          inputs: {x: [1.0, 2.0]}
          weights: {x: [3.0]}
          ops:
            - {op: tanh, args: [z], out: t}
            - {op: tanh, args: [2.0], out: u}
            - {op: pow, args: [x, x], out: p}
            - {op: linear, args: [x], out: t}
          outputs: [t, nope]
        """)
    assert errors(case_text(fn=fn)) == [
        "f.yaml:5: function.weights.x: 'x' is also an input",
        "f.yaml:7: function.ops[0].args[0]: 'z' is not an input, a weight or an earlier op's out",
        "f.yaml:8: function.ops[1].args[0]: tanh needs tensors, not the number 2.0",
        "f.yaml:9: function.ops[2].args[1]: the exponent of pow must be a number",
        "f.yaml:10: function.ops[3].args: linear takes 2 or 3 arguments, got 1",
        "f.yaml:10: function.ops[3].out: 't' is already the out of ops[0]",
        "f.yaml:11: function.outputs[1]: 'nope' names nothing",
    ]


def test_unknown_op_and_unknown_field():
    fn = "function:\n  inputs: {x: 1.0}\n  ops:\n    - {op: sigmoid, args: [x], out: s}\n  outputs: [s]\n  extra: 1\n"
    errs = errors(case_text(fn=fn))
    assert errs[0].startswith("f.yaml:6: function.ops[0].op: Input should be 'add', 'sub'")
    assert errs[1] == "f.yaml:8: function.extra: unknown field"


def test_call_errors_say_call_and_both_call_and_clip_is_an_error():
    assert errors(case_text(call="call:\n  api: mindspore.grad\n  argz: {}\n")) == [
        "f.yaml:13: call.argz: unknown field (did you mean 'args'?)"]
    both = case_text(call="call: {api: mindspore.grad}\nclip: {api: mindspore.grad}\n")
    assert errors(both) == ["f.yaml:11: call: give one of `call:` or `clip:`, not both"]


def test_function_with_grads_or_model_is_an_error():
    text = case_text() + "grads: {w: [1.0]}\n"
    assert errors(text) == ["f.yaml:1: exactly one of `grads:`, `model:` or `function:` is required"]


def test_a_ragged_function_input_is_an_error():
    fn = "function:\n  inputs: {x: [[1, 2], [3]]}\n  ops: [{op: sum, args: [x], out: s}]\n  outputs: [s]\n"
    assert errors(case_text(fn=fn)) == ["f.yaml:4: function.inputs.x: ragged nested list at top level"]


def _plan(text, reg):
    res = parse_text(text, "f.yaml")
    assert not res.errors, res.errors
    return plan(res.cases, reg, device="cpu")


def test_plan_rejects_a_function_with_a_clipping_api_and_the_reverse(reg):
    p = _plan(case_text(call="call: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1.0}}\n"), reg)
    assert [str(e) for e in p.errors] == [
        "f.yaml:11: clip.api: torch.nn.utils.clip_grad_norm_ is a clipping API: it needs `grads:` or `model:`"]
    text = "id: c\ntitle: t\ngrads: {w: [1.0]}\nclip: {api: mindspore.grad}\n"
    p = _plan(text, reg)
    assert [str(e) for e in p.errors] == [
        "f.yaml:4: clip.api: mindspore.grad is a derivation API: it needs `function:`"]


def test_plan_reports_an_untranslatable_call_at_its_args(reg):
    call = "call:\n  api: torch.autograd.grad\n  args: {outputs: [loss], inputs: [x, q]}\n"
    p = _plan(case_text(call=call), reg)
    assert not p.cells
    assert str(p.errors[0]) == ("f.yaml:13: clip.args: torch.autograd.grad: inputs: ['q'] are not "
                                "inputs or weights of the function")


def test_plan_cells_carry_each_targets_own_arguments(reg):
    call = "call:\n  api: torch.autograd.grad\n  args: {outputs: [loss], inputs: [y, fc.weight]}\n"
    p = _plan(case_text(call=call), reg)
    assert not p.errors
    by_api = {c.api: c.target_args for c in p.cells if c.dtype == "float32"}
    assert by_api == {
        "torch.autograd.grad": {"outputs": ["loss"], "inputs": ["y", "fc.weight"], "allow_unused": False},
        "mindspore.grad": {"grad_position": 1, "weights": ["fc.weight"], "has_aux": True},
        "paddle.grad": {"outputs": ["loss"], "inputs": ["y", "fc.weight"], "allow_unused": False},
        "jax.grad": {"argnums": [1, 2], "has_aux": True},
        "tf.GradientTape.gradient": {"outputs": ["loss"], "inputs": ["y", "fc.weight"], "allow_unused": False},
    }
    assert {c.id for c in p.cells} >= {"c[mindspore.grad-float32-cpu]"}


# --------------------------------------------------------------------------- translation

def fn_of(text=SEED_FN):
    return parse_text(case_text(fn=text), "f.yaml").cases[0].case.function


#: the registry's style of each derivation API (derive_args translates between styles)
STYLE = {"torch.autograd.grad": "autograd", "paddle.grad": "autograd"}


def test_every_derivation_api_has_a_style(reg):
    for name, api in reg.apis.items():
        assert (api.style in derive_args.STYLES) == (api.kind == "derivation"), name


def test_mindspore_table_translates_to_torch_inputs():
    fn = fn_of()
    tr = derive_args.translate
    assert tr("grad_position", "autograd", {"grad_position": [0, 1], "weights": True,
                                                       "has_aux": True}, fn) == {
        "outputs": ["loss"], "inputs": ["x", "y", "fc.weight"], "allow_unused": True}
    assert tr("grad_position", "autograd", {"grad_position": 0, "weights": None, "has_aux": False}, fn) == {
        "outputs": ["loss", "logits"], "inputs": ["x"], "allow_unused": True}
    assert tr("grad_position", "autograd", {"grad_position": None, "weights": None,
                                                       "has_aux": True}, fn)["inputs"] == []
    assert tr("grad_position", "argnums",
              {"grad_position": 1, "weights": ["fc.weight"], "has_aux": True}, fn) == {
        "argnums": [1, 2], "has_aux": True}


def test_torch_calls_translate_to_mindspore_with_output_order_for_has_aux():
    fn = fn_of()
    args = {"outputs": ["logits"], "inputs": ["x"], "allow_unused": False}
    assert derive_args.translate("autograd", "grad_position", args, fn) == {
        "grad_position": 0, "weights": None, "has_aux": True}
    # the function is written to return the differentiated output first
    assert derive_args.job_extras("autograd", "grad_position", args, fn) == {
        "fn_outputs": ["logits", "loss"], "repeat": 1}
    assert derive_args.job_extras("autograd", "autograd", args, fn)["fn_outputs"] == ["loss", "logits"]
    back = derive_args.translate("backward", "grad_position", {"output": "loss", "repeat": 2}, fn)
    assert back == {"grad_position": [0, 1], "weights": ["fc.weight"], "has_aux": True}
    assert derive_args.job_extras("backward", "grad_position",
                                  {"output": "loss", "repeat": 2}, fn)["repeat"] == 2


def test_untranslatable_requests_raise_valueerror():
    fn = fn_of()
    with pytest.raises(ValueError, match="grad_position: 5 is not a position"):
        derive_args.request("grad_position", {"grad_position": 5}, fn)
    with pytest.raises(ValueError, match="weights: \\['W'\\] are not weights"):
        derive_args.request("grad_position", {"grad_position": 0, "weights": ["W"]}, fn)
    three = SEED_FN.replace("outputs: [loss, logits]", "outputs: [loss, logits, fc]")
    with pytest.raises(ValueError, match="differentiates either the first output"):
        derive_args.translate("autograd", "grad_position",
                              {"outputs": ["loss", "logits"], "inputs": ["x"]}, fn_of(three))


def test_every_bundled_derivation_case_plans_without_errors(reg):
    loaded = load_paths(["cases/derivation"])
    assert not loaded.errors
    p = plan(loaded.cases, reg, device="cpu")
    assert not p.errors
    assert {c.backend for c in p.cells} == {"torch", "mindspore", "paddle", "jax", "tensorflow"}
    # both directions: torch sources with MindSpore/Paddle targets, MindSpore sources with torch/Paddle
    pairs = {(c.source_api.split(".")[0], c.backend) for c in p.cells}
    assert {("torch", "mindspore"), ("torch", "paddle"), ("mindspore", "torch"), ("mindspore", "paddle"),
            ("paddle", "torch"), ("paddle", "mindspore")} <= pairs


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conformance.kinds.derivation.cell import materialise  # noqa: E402
from conformance.kinds.derivation import oracle as derivation  # noqa: E402
from conformance.spec.load import load_paths, parse_text


@settings(max_examples=40, deadline=None)
@given(pos=st.lists(st.integers(0, 1), unique=True, max_size=2), weights=st.booleans(),
       has_aux=st.booleans(), single=st.booleans())
def test_translated_calls_have_the_same_oracle_gradients(pos, weights, has_aux, single):
    """mindspore.grad -> torch.autograd.grad / paddle.grad and back: on seed 003's Net (every
    output a scalar, every name used) the translated call's oracle gives the same gradients."""
    if not pos and not weights:
        return  # the both-None row raises (declared differences, tested on the cases)
    case = parse_text(case_text(), "f.yaml").cases[0].case
    fn = materialise(case, "float64")
    gp = None if not pos else (pos[0] if single and len(pos) == 1 else pos)
    ms_args = {"grad_position": gp, "weights": True if weights else None, "has_aux": has_aux}
    want = derivation.mindspore_grad(fn, **ms_args)
    for target, oracle in (("torch.autograd.grad", derivation.autograd_grad),
                           ("paddle.grad", derivation.paddle_grad)):
        args = derive_args.translate("grad_position", STYLE[target], ms_args, case.function)
        got = oracle(fn, **args)
        assert list(got.grads) == list(want.grads)
        for n in want.grads:
            assert (got.grads[n] == want.grads[n]).all()
        back = derive_args.translate(STYLE[target], "grad_position", args, case.function)
        extras = derive_args.job_extras(STYLE[target], "grad_position", args, case.function)
        assert extras["fn_outputs"] == ["loss", "logits"]
        again = derivation.mindspore_grad(fn, **back)
        assert {n: g.tolist() for n, g in again.grads.items()} == {n: g.tolist() for n, g in want.grads.items()}


def test_sweep_keys_may_use_call(reg):
    text = case_text() + "sweep:\n  call.args.grad_position: [0, 1]\n"
    res = parse_text(text, "f.yaml")
    assert not res.errors
    c = res.cases[0].case
    assert [v.args["grad_position"] for v in c.variants()] == [0, 1]
    cells = plan(res.cases, reg, device="cpu", keyword="torch.autograd.grad and float32").cells
    assert [c.target_args["inputs"] for c in cells] == [["x"], ["y"]]
    assert cells[1].id == "c[torch.autograd.grad-float32-cpu-grad_position=1]"
