"""The API-mapping knowledge base: the bundled data, argument translation, source-argument checks,
``when:`` / ``unless:`` conditions, and rejection of bad registry files (own small YAML files in a
temporary directory; ``registry.load`` is cached per directory, and every tmp_path is new)."""

from __future__ import annotations

import math
import textwrap

import pytest
import yaml

from conformance import kinds, registry
from conformance.registry import Difference, Mapping, Registry

CLIP_NORM = "torch.nn.utils.clip_grad_norm_"
CLIP_VALUE = "torch.nn.utils.clip_grad_value_"
TOTAL_NORM = "torch.nn.utils.get_total_norm"
WITH_NORM = "torch.nn.utils.clip_grads_with_norm_"


@pytest.fixture(scope="module")
def reg() -> Registry:
    return registry.load()


def mapping(reg: Registry, source: str, target: str) -> Mapping:
    (m,) = [m for m in reg.mappings if m.source == source and m.target == target]
    return m


# --------------------------------------------------------------------------- bundled data


def test_bundled_registry_loads_and_is_cached(reg):
    assert registry.load() is reg
    assert {CLIP_NORM, CLIP_VALUE, TOTAL_NORM, WITH_NORM} <= set(reg.sources())
    assert {CLIP_NORM, CLIP_VALUE, TOTAL_NORM, WITH_NORM, "mindspore.ops.clip_by_value",
            "paddle.nn.utils.clip_grad_norm_"} <= set(reg.apis)
    assert all(name == api.name for name, api in reg.apis.items())
    ids = [d.id for m in reg.mappings for d in m.differences]
    assert len(ids) == len(set(ids)), "difference ids must be unique"
    numerics = {n.id for m in reg.mappings for n in m.numerics}  # one entry joined to many mappings
    assert numerics and not numerics & set(ids), "a numerics id is not also a difference's"
    pairs = [(m.source, m.target) for m in reg.mappings]
    assert len(pairs) == len(set(pairs)), "a source -> target pair is mapped once"


def test_every_mapping_source_has_an_oracle_function(reg):
    for m in reg.mappings:
        api = reg.apis[m.source]
        assert api.oracle is not None, m.source
        module = kinds.oracles()[api.kind]  # every kind folder's oracle, found by discovery
        assert callable(getattr(module, api.oracle.fn, None)), f"{m.source}: {api.oracle.fn}"
        # the oracle's arguments name parameters the source API really has
        assert set(api.oracle.args.values()) <= set(api.params), m.source


def test_every_runnable_mapping_translates_into_real_target_parameters(reg):
    for m in reg.mappings:
        if m.category == "missing":
            assert "." not in m.target
            continue
        src, tgt = reg.apis[m.source], reg.apis[m.target]
        assert m.backend == tgt.framework, (m.source, m.target)
        if m.args is None:
            continue
        assert set(m.args) <= set(tgt.params), (m.source, m.target)
        for rule in m.args.values():
            name = rule if isinstance(rule, str) else rule.get("from")
            if name is not None:
                assert name in src.params, (m.source, m.target, name)


def test_identity_mappings_exist_for_every_torch_source(reg):
    for s in reg.sources():
        idm = [m for m in reg.targets(s) if m.category == "identity"]
        assert [m.target for m in idm] == [s]


def test_bundled_clip_grads_with_norm_has_no_paddle_target(reg):
    runnable = {m.target: m.category for m in reg.targets(WITH_NORM)}
    everything = {m.target: m.category for m in reg.targets(WITH_NORM, runnable=False)}
    assert runnable[WITH_NORM] == "identity"
    assert "paddle" not in runnable
    assert everything["paddle"] == "missing"
    assert set(everything) - set(runnable) == {"paddle"}
    assert reg.targets("no.such.api") == []


def test_difference_lookup_of_an_unknown_id(reg):
    assert reg.difference("no-such-difference") is None


# --------------------------------------------------------------------------- translate


def test_translate_negates_clip_value(reg):
    m = mapping(reg, CLIP_VALUE, "mindspore.ops.clip_by_value")
    assert Registry.translate(m, {"clip_value": 0.25, "foreach": None}) == {
        "clip_value_min": -0.25, "clip_value_max": 0.25}
    m = mapping(reg, CLIP_VALUE, "paddle.nn.ClipGradByValue")
    assert Registry.translate(m, {"clip_value": 3, "foreach": None}) == {"max": 3, "min": -3}


def test_translate_a_literal_inf_value(reg):
    m = mapping(reg, TOTAL_NORM, "paddle.nn.utils.clip_grad_norm_")
    out = Registry.translate(m, {"norm_type": 1.0, "error_if_nonfinite": True, "foreach": None})
    assert out == {"max_norm": math.inf, "norm_type": 1.0, "error_if_nonfinite": True}
    assert isinstance(out["max_norm"], float) and out["max_norm"] > 0


def test_translate_wraps_a_number_as_a_tensor_where_the_target_takes_only_a_tensor(reg):
    # tf.clip_by_global_norm's use_norm raises AttributeError for a Python float (TF 2.21)
    m = mapping(reg, "torch.nn.utils.clip_grads_with_norm_", "tf.clip_by_global_norm")
    out = reg.target_args(m, {"max_norm": 1.0, "total_norm": 5.0, "foreach": None})
    assert out == {"clip_norm": 1.0, "use_norm": {"tensor": 5.0}}  # the cell's dtype, as any tensor argument
    given = {"tensor": 5.0, "dtype": "float64"}
    assert reg.target_args(m, {"max_norm": 1.0, "total_norm": given})["use_norm"] == given


def test_translate_renames_and_drops_unmapped_args(reg):
    m = mapping(reg, CLIP_NORM, "mindspore.ops.clip_by_global_norm")
    assert Registry.translate(m, {"max_norm": 0.5, "norm_type": 2.0, "error_if_nonfinite": False,
                                  "foreach": None}) == {"clip_norm": 0.5}
    m = mapping(reg, TOTAL_NORM, "mindspore.ops.vector_norm")
    assert Registry.translate(m, {"norm_type": math.inf}) == {"ord": math.inf}


def test_translate_without_rules_copies_the_args(reg):
    m = mapping(reg, CLIP_NORM, CLIP_NORM)
    assert m.args is None
    given = {"max_norm": 0.5, "norm_type": 2.0}
    out = Registry.translate(m, given)
    assert out == given and out is not given


def test_translate_rules_from_yaml_text():
    rules = yaml.safe_load(textwrap.dedent("""
        a: x
        b: {from: x, op: neg}
        c: {from: x}
        d: {value: .inf}
        e: {value: -.inf}
        f: {from: missing, op: neg}
        g: missing
    """))
    m = Mapping(source="s.f", target="t.g", category="fully consistent", args=rules)
    assert Registry.translate(m, {"x": 1.5}) == {
        "a": 1.5, "b": -1.5, "c": 1.5, "d": math.inf, "e": -math.inf, "f": None}


def test_translate_rejects_an_unknown_op():
    m = Mapping(source="s.f", target="t.g", category="fully consistent", args={"a": {"from": "x", "op": "abs"}})
    with pytest.raises(ValueError, match=r"^unknown argument op 'abs' in s\.f -> t\.g$"):
        Registry.translate(m, {"x": -2.0})


# --------------------------------------------------------------------------- source_args


def test_source_args_fills_defaults(reg):
    args, problems = reg.source_args(CLIP_NORM, {"max_norm": 0.5})
    assert problems == []
    assert args == {"max_norm": 0.5, "norm_type": 2.0, "error_if_nonfinite": False, "foreach": None}
    args, problems = reg.source_args(CLIP_NORM, {"max_norm": 1, "norm_type": math.inf})
    assert problems == [] and args["norm_type"] == math.inf


def test_source_args_reports_unknown_with_suggestion_and_missing_required(reg):
    args, problems = reg.source_args(CLIP_NORM, {"max_nrom": 1.0})
    assert problems == [
        "max_nrom: torch.nn.utils.clip_grad_norm_ has no argument 'max_nrom' (did you mean 'max_norm'?)",
        "max_norm: required argument of torch.nn.utils.clip_grad_norm_ is missing",
    ]
    assert args == {"norm_type": 2.0, "error_if_nonfinite": False, "foreach": None}


def test_source_args_unknown_without_a_close_match(reg):
    _, problems = reg.source_args(CLIP_VALUE, {"clip_value": 0.1, "zzz": 1})
    assert problems == ["zzz: torch.nn.utils.clip_grad_value_ has no argument 'zzz'"]


def test_source_args_two_required_missing(reg):
    args, problems = reg.source_args(WITH_NORM, {})
    assert problems == [
        "max_norm: required argument of torch.nn.utils.clip_grads_with_norm_ is missing",
        "total_norm: required argument of torch.nn.utils.clip_grads_with_norm_ is missing",
    ]
    assert args == {"foreach": None}


# --------------------------------------------------------------------------- conditions


def diff_from_yaml(body: str) -> Difference:
    return Difference.model_validate(yaml.safe_load(textwrap.dedent(body)))


def test_when_condition_float_equality_and_inf():
    d = diff_from_yaml("""
        id: d1
        text: differs for L2 and max norms in half precision
        when: {args.norm_type: [2.0, .inf], dtype: [float16, bfloat16]}
        variant: {accumulate: input}
    """)
    assert d.when["args.norm_type"][1] == math.inf
    assert d.applies({"args.norm_type": 2, "dtype": "float16"})          # 2 == 2.0
    assert d.applies({"args.norm_type": 2.0, "dtype": "bfloat16"})
    assert d.applies({"args.norm_type": math.inf, "dtype": "float16"})
    assert not d.applies({"args.norm_type": -math.inf, "dtype": "float16"})
    assert not d.applies({"args.norm_type": 1.0, "dtype": "float16"})
    assert not d.applies({"args.norm_type": 2.0, "dtype": "float32"})
    assert not d.applies({"dtype": "float16"})  # a fact that is absent never matches
    assert not d.applies({"args.norm_type": "2.0", "dtype": "float16"})


def test_unless_condition_excludes():
    d = diff_from_yaml("""
        id: d2
        text: t
        unless: {args.max_norm: [0, .inf], device: [gpu]}
        variant: {threshold: strict}
    """)
    assert d.applies({"args.max_norm": 1.0, "device": "gpu"})
    assert d.applies({"args.max_norm": 0.0, "device": "cpu"})
    assert not d.applies({"args.max_norm": 0.0, "device": "gpu"})      # 0 == 0.0
    assert not d.applies({"args.max_norm": math.inf, "device": "gpu"})


def test_when_and_unless_together_and_nan():
    d = diff_from_yaml("""
        id: d3
        text: t
        when: {backend: [paddle], args.clip_value: [.nan]}
        unless: {grads: [model]}
        variant: {nan: propagate}
    """)
    assert d.applies({"backend": "paddle", "args.clip_value": math.nan, "grads": "injected"})
    assert not d.applies({"backend": "paddle", "args.clip_value": math.nan, "grads": "model"})
    assert not d.applies({"backend": "paddle", "args.clip_value": 1.0, "grads": "injected"})
    assert not d.applies({"backend": "torch", "args.clip_value": math.nan, "grads": "injected"})


def test_no_conditions_always_applies():
    d = Difference(id="d4", text="t", variant={"eps": 0.0})
    assert d.applies({}) and d.applies({"dtype": "float64"})


def test_bad_difference_id_is_rejected():
    with pytest.raises(ValueError, match="String should match pattern"):
        Difference(id="Bad Id", text="t", variant={})


# --------------------------------------------------------------------------- bad registry files


GOOD = """\
apis:
  torch.f:
    framework: torch
    signature: f(parameters, max_norm)
    params: {max_norm: {required: true}, norm_type: {default: 2.0}}
    oracle: {fn: clip_grad_norm, args: {max_norm: max_norm}, knobs: {eps: 1.0e-6}}
  paddle.g:
    framework: paddle
    signature: g(clip_norm)
    params: {clip_norm: {required: true}}
mappings:
  - source: torch.f
    target: paddle.g
    category: input usage differs
    args: {clip_norm: max_norm}
    differences:
      - id: paddle-g-no-eps
        text: no eps
        when: {args.norm_type: [2]}
        variant: {eps: 0.0}
"""


def write_registry(tmp_path, body: str) -> str:
    (tmp_path / "r.yaml").write_text(body, encoding="utf-8")
    return str(tmp_path)


def test_own_registry_directory_loads(tmp_path):
    r = registry.load(directory=write_registry(tmp_path, GOOD))
    assert sorted(r.apis) == ["paddle.g", "torch.f"]
    (m,) = r.targets("torch.f")
    assert (m.backend, m.category) == ("paddle", "input usage differs")
    d = r.difference("paddle-g-no-eps")
    assert d is m.differences[0] and d.variant == {"eps": 0.0}
    assert d.applies({"args.norm_type": 2.0}) and not d.applies({"args.norm_type": 1.0})
    args, problems = r.source_args("torch.f", {"max_norm": 3})
    assert (args, problems) == ({"norm_type": 2.0, "max_norm": 3}, [])
    assert Registry.translate(m, args) == {"clip_norm": 3}


def test_targets_order_and_missing_in_an_own_registry(tmp_path):
    body = GOOD + """\
  - source: torch.f
    target: torch.f
    category: identity
  - source: torch.f
    target: mindspore
    category: missing
"""
    r = registry.load(directory=write_registry(tmp_path, body))
    assert [(m.target, m.category) for m in r.targets("torch.f")] == [
        ("paddle.g", "input usage differs"), ("torch.f", "identity")]
    assert [m.target for m in r.targets("torch.f", runnable=False)] == ["paddle.g", "torch.f", "mindspore"]
    assert r.sources() == ["torch.f"]


def problems(directory) -> list:
    """The registry's load problems (``path:line: field: problem``), with the directory cut off."""
    with pytest.raises(registry.RegistryError) as ei:
        registry.load(directory=directory)
    return [p.replace(str(directory) + "/", "") for p in ei.value.problems]


def test_unknown_knob_in_a_variant_is_rejected_with_file_and_line(tmp_path):
    d = write_registry(tmp_path, GOOD.replace("variant: {eps: 0.0}", "variant: {epsilon: 0.0}"))
    (p,) = problems(d)
    assert p.startswith("r.yaml:20: mappings[0].differences[0].variant.epsilon: 'epsilon' is not a knob of "
                        "torch.f's oracle (clipping.clip_grad_norm) (did you mean 'eps'?); it takes: ")
    assert ", eps, " in p and "threshold" in p


def test_unknown_knob_in_an_api_oracle_is_rejected(tmp_path):
    d = write_registry(tmp_path, GOOD.replace("knobs: {eps: 1.0e-6}", "knobs: {scpoe: global}"))
    (p,) = problems(d)
    assert p.startswith("r.yaml:6: apis.torch.f.oracle.knobs.scpoe: 'scpoe' is not a knob of torch.f's oracle "
                        "(clipping.clip_grad_norm) (did you mean 'scope'?)")


def test_a_knob_of_another_kind_is_rejected_at_its_line(tmp_path):
    # a training knob (micro_loss) on a clipping API: a load error naming file and line, not a
    # TypeError when a cell first calls the oracle
    d = write_registry(tmp_path, GOOD.replace("variant: {eps: 0.0}", "variant: {micro_loss: sum}"))
    (p,) = problems(d)
    assert p.startswith("r.yaml:20: mappings[0].differences[0].variant.micro_loss: 'micro_loss' is not a knob")


def test_an_oracle_function_of_another_kind_is_rejected(tmp_path):
    d = write_registry(tmp_path, GOOD.replace("oracle: {fn: clip_grad_norm,", "oracle: {fn: train_steps,"))
    assert problems(d) == ["r.yaml:6: apis.torch.f.oracle.fn: the clipping oracle has no function 'train_steps'"]


def test_bad_category_is_rejected(tmp_path):
    d = write_registry(tmp_path, GOOD.replace("category: input usage differs", "category: mostly the same"))
    (p,) = problems(d)
    assert p.startswith("r.yaml:12: mappings[0]: unknown category 'mostly the same'; known: ['identity', 'fully consistent',")


def test_a_mapping_source_without_an_oracle_is_rejected(tmp_path):
    body = GOOD.replace("    oracle: {fn: clip_grad_norm, args: {max_norm: max_norm}, knobs: {eps: 1.0e-6}}\n", "")
    assert "oracle" not in body
    assert problems(write_registry(tmp_path, body)) == ["r.yaml:11: mappings[0].source: the source torch.f has no oracle"]


def test_a_mapping_to_an_unregistered_api_is_rejected(tmp_path):
    d = write_registry(tmp_path, GOOD.replace("target: paddle.g", "target: paddle.h"))
    assert problems(d) == ["r.yaml:13: mappings[0].target: paddle.h is not a registered API (did you mean 'paddle.g'?)"]


def test_a_missing_mapping_must_name_only_the_framework(tmp_path):
    d = write_registry(tmp_path, GOOD.replace("category: input usage differs", "category: missing")
                       .replace("target: paddle.g", "target: paddle.nn.Nothing"))
    assert problems(d) == ["r.yaml:13: mappings[0].target: a `missing` mapping names only the framework"]


def test_an_api_registered_twice_across_files_is_rejected(tmp_path):
    write_registry(tmp_path, GOOD)
    (tmp_path / "s.yaml").write_text("apis:\n  paddle.g: {framework: paddle, signature: g()}\n")
    assert problems(str(tmp_path)) == ["s.yaml:2: apis.paddle.g: API paddle.g is registered twice (also r.yaml)"]


def test_unknown_top_level_key_is_rejected(tmp_path):
    d = write_registry(tmp_path, GOOD + "mapings: []\n")
    assert problems(d) == ["r.yaml:21: mapings: unknown field (did you mean 'mappings'?)"]


def test_an_api_of_an_unknown_framework_names_the_file_and_the_api(tmp_path):
    d = write_registry(tmp_path, GOOD.replace("framework: paddle", "framework: padle"))
    assert problems(d) == ["r.yaml:8: apis.paddle.g.framework: paddle.g must belong to the framework 'paddle'"]


def test_every_problem_of_the_registry_is_reported_at_once(tmp_path):
    d = write_registry(tmp_path, GOOD.replace("knobs: {eps: 1.0e-6}", "knobs: {scpoe: global}")
                       .replace("target: paddle.g", "target: paddle.h"))
    assert [p.split(":")[1] for p in problems(d)] == ["6", "13"]
