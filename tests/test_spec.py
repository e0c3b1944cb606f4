"""Case files: loading with ``file:line: field: problem`` errors, sweep expansion, safety and the
JSON Schema. Every YAML text below is written line by line so the expected line numbers can be
read off the list index (line n is ``lines[n - 1]``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from conformance import tensors
from conformance import yamlsafe
from conformance.spec.case import ID_PATTERN
from conformance.spec.load import LoadResult, load_paths, parse_text
from conformance.spec.locations import CaseError
from conformance.spec.schema import json_schema

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"

#: A valid injected-gradients case, 7 lines; tests append lines 8, 9, ...
BASE = [
    "id: c1",                                   # 1
    "title: t",                                 # 2
    "grads:",                                   # 3
    "  w: [1.0, 2.0]",                          # 4
    "clip:",                                    # 5
    "  api: torch.nn.utils.clip_grad_norm_",    # 6
    "  args: {max_norm: 0.5}",                  # 7
]


def text(*lines: str) -> str:
    return "\n".join(lines) + "\n"


def parse(*lines: str) -> LoadResult:
    return parse_text(text(*lines), "f.yaml")


def only_error(res: LoadResult) -> CaseError:
    assert len(res.errors) == 1, [str(e) for e in res.errors]
    return res.errors[0]


# --------------------------------------------------------------------------- valid files


def test_a_valid_case_loads_with_defaults_and_line_map():
    res = parse(*BASE)
    assert res.errors == []
    assert len(res.cases) == 1
    sc = res.cases[0]
    assert (sc.path, sc.line) == ("f.yaml", 1)
    c = sc.case
    assert c.id == "c1" and c.title == "t"
    assert c.dtypes == ["float32"]
    assert c.devices == ["cpu", "gpu"]
    assert c.grads == {"w": [1.0, 2.0]}
    assert c.model is None
    assert c.clip.api == "torch.nn.utils.clip_grad_norm_"
    assert c.clip.args == {"max_norm": 0.5}
    assert sc.lines[("title",)] == 2
    assert sc.lines[("grads", "w")] == 4
    assert sc.lines[("clip", "args", "max_norm")] == 7


def test_caseerror_str_is_path_line_field_problem():
    assert str(CaseError("a/b.yaml", 12, "grads.w", "boom")) == "a/b.yaml:12: grads.w: boom"
    assert str(CaseError("a/b.yaml", 3, "", "boom")) == "a/b.yaml:3: boom"


def test_yaml_nan_and_inf_parse_inside_grads():
    res = parse("id: c1", "title: t", "grads:", "  w: [.nan, .inf, -.inf, 1.5, .NaN]", "  b: null",
                "clip: {api: a.b}")
    assert res.errors == []
    g = res.cases[0].case.grads
    assert g["b"] is None
    w = g["w"]
    assert math.isnan(w[0]) and math.isnan(w[4])
    assert w[1] == math.inf and w[2] == -math.inf and w[3] == 1.5
    arr = tensors.materialize(w)
    assert arr.dtype == np.float64
    np.testing.assert_array_equal(arr, [np.nan, np.inf, -np.inf, 1.5, np.nan])


def test_several_documents_in_one_file_report_their_own_lines():
    res = parse(
        "id: c1",                 # 1
        "title: t",               # 2
        "grads: {w: [1]}",        # 3
        "clip: {api: a.b}",       # 4
        "---",                    # 5
        "id: c2",                 # 6
        "title: t",               # 7
        "grads: {w: [1]}",        # 8
        "clip: {api: a.b, argz: {}}",  # 9
        "---",                    # 10
        "- 1",                    # 11
    )
    assert [sc.case.id for sc in res.cases] == ["c1"]
    assert [str(e) for e in res.errors] == [
        "f.yaml:9: clip.argz: unknown field (did you mean 'args'?)",
        "f.yaml:11: a case file must be a mapping",
    ]


# --------------------------------------------------------------------------- errors, with lines


def test_misspelt_top_level_key_suggests_dtypes():
    e = only_error(parse(*BASE, "dtyps: [float32]"))
    assert (e.path, e.line, e.field) == ("f.yaml", 8, "dtyps")
    assert e.problem == "unknown field (did you mean 'dtypes'?)"
    assert str(e) == "f.yaml:8: dtyps: unknown field (did you mean 'dtypes'?)"


def test_misspelt_generator_key_suggests_seed():
    res = parse(
        "id: c1",
        "title: t",
        "grads:",
        "  w: {random: normal, shape: [2], sed: 3}",  # 4
        "clip: {api: a.b}",
    )
    e = only_error(res)
    assert (e.line, e.field) == (4, "grads.w.sed")
    assert str(e) == "f.yaml:4: grads.w.sed: unknown field (did you mean 'seed'?)"


def test_misspelt_generator_name_suggests_random():
    e = only_error(parse("id: c1", "title: t", "grads:", "  w: {randm: normal, shape: [2]}",
                         "clip: {api: a.b}"))
    assert str(e) == ("f.yaml:4: grads.w: a generator mapping needs one of the keys random, fill, "
                      "arange (did you mean 'random'?)")


def test_generator_value_of_the_wrong_type():
    e = only_error(parse("id: c1", "title: t", "grads:", "  w: {random: normal, shape: [2], seed: x}",
                         "clip: {api: a.b}"))
    assert str(e) == ("f.yaml:4: grads.w.seed: Input should be a valid integer, "
                      "unable to parse string as an integer")


def test_misspelt_layer_field_suggests_weight():
    res = parse(
        "id: c1",             # 1
        "title: t",           # 2
        "model:",             # 3
        "  layers:",          # 4
        "    - type: linear",  # 5
        "      in: 3",        # 6
        "      out: 2",       # 7
        "      wieght: {fill: 0}",  # 8
        "  loss: {type: sum}",
        "  inputs: [[1, 2, 3]]",
        "clip: {api: a.b}",
    )
    e = only_error(res)
    assert (e.line, e.field) == (8, "model.layers[0].wieght")
    assert str(e) == "f.yaml:8: model.layers[0].wieght: unknown field (did you mean 'weight'?)"


def test_misspelt_key_inside_a_layer_generator():
    e = only_error(parse(
        "id: c1", "title: t", "model:", "  layers:",
        "    - {type: linear, in: 3, out: 2, weight: {fill: 0, shap: [2]}}",  # 5
        "  loss: {type: sum}", "  inputs: [[1, 2, 3]]", "clip: {api: a.b}"))
    assert str(e) == "f.yaml:5: model.layers[0].weight.shap: unknown field"


def test_unknown_layer_type_with_suggestion():
    res = parse(
        "id: c1",
        "title: t",
        "model:",
        "  layers:",
        "    - {type: relu}",                       # 5
        "    - {type: liner, in: 3, out: 2}",       # 6
        "  loss: {type: sum}",
        "  inputs: [[1, 2, 3]]",
        "clip: {api: a.b}",
    )
    e = only_error(res)
    assert (e.line, e.field) == (6, "model.layers[1]")
    assert e.problem == "unknown layer type 'liner' (did you mean 'linear'?)"


def test_missing_required_clip():
    e = only_error(parse("id: c1", "title: t", "grads:", "  w: [1.0]"))
    assert str(e) == "f.yaml:1: clip: required field is missing"


def test_loss_without_targets_is_reported():
    e = only_error(parse("id: c1", "title: t", "clip: {api: a.b}",
                         "model: {layers: [{type: linear, in: 1, out: 1}], loss: {type: mse}, inputs: [[1.0]]}"))
    assert str(e) == "f.yaml:4: model: loss mse needs targets"


def test_both_grads_and_model_is_an_error():
    res = parse(*BASE, "model:", "  layers: [{type: relu}]", "  loss: {type: sum}", "  inputs: [1.0]")
    assert res.cases == []
    e = only_error(res)
    assert (e.line, e.field) == (1, "")
    assert str(e) == "f.yaml:1: exactly one of `grads:`, `model:` or `function:` is required"


def test_neither_grads_nor_model_is_an_error():
    e = only_error(parse("id: c1", "title: t", "clip: {api: a.b}"))
    assert str(e) == "f.yaml:1: exactly one of `grads:`, `model:` or `function:` is required"


def test_ragged_nested_list():
    res = parse("id: c1", "title: t", "grads:",
                "  w: [[1, 2], [3]]",                       # 4
                "  v: [[[1], [2]], [[1], [2, 3]]]",          # 5
                "clip: {api: a.b}")
    assert [str(e) for e in res.errors] == [
        "f.yaml:4: grads.w: ragged nested list at top level",
        "f.yaml:5: grads.v: ragged nested list at [1]",
    ]


def test_non_number_inside_a_list():
    res = parse("id: c1", "title: t", "grads:",
                "  w: [[1, 2], [3, abc]]",  # 4
                "  v: [1, true]",           # 5
                "clip: {api: a.b}")
    assert [str(e) for e in res.errors] == [
        "f.yaml:4: grads.w: expected a number at [1][1], got 'abc'",
        "f.yaml:5: grads.v: expected a number at [1], got True",
    ]


def test_ragged_layer_weight_is_reported_at_its_line():
    res = parse("id: c1", "title: t", "model:", "  layers:",
                "    - type: linear", "      in: 2", "      out: 2",
                "      weight: [[1, 2], [3]]",  # 8
                "  loss: {type: sum}", "  inputs: [[1, 2]]", "clip: {api: a.b}")
    assert [str(e) for e in res.errors] == ["f.yaml:8: model.layers[0].weight: ragged nested list at top level"]


def test_a_case_with_a_ragged_list_is_not_returned_as_valid():
    res = parse("id: c1", "title: t", "grads:", "  w: [[1, 2], [3]]", "clip: {api: a.b}")
    assert len(res.errors) == 1
    assert res.cases == []


def test_yaml_syntax_error_with_its_line():
    res = parse(*BASE, "key: value: other")  # 8
    assert res.cases == []
    e = only_error(res)
    assert (e.line, e.field) == (8, "")
    assert str(e) == "f.yaml:8: YAML syntax error: mapping values are not allowed here"


def test_yaml_unclosed_flow_sequence():
    res = parse("id: c1", "title: t", "grads:", "  w: [1, 2", "clip: {api: a.b}")
    assert [str(e) for e in res.errors] == ["f.yaml:5: YAML syntax error: expected ',' or ']', but got ':'"]


def test_duplicate_key_names_both_lines():
    res = parse("id: c1", "title: t", "grads:", "  w: [1]", "clip: {api: a.b}", "title: again")
    assert res.cases == []
    e = only_error(res)
    assert (e.line, e.field) == (6, "title")
    assert str(e) == "f.yaml:6: title: duplicate key (first at line 2)"


def test_duplicate_nested_key():
    res = parse("id: c1", "title: t", "grads:", "  w: [1]", "  b: [2]", "  w: [3]", "clip: {api: a.b}")
    assert [str(e) for e in res.errors] == ["f.yaml:6: grads.w: duplicate key (first at line 4)"]


@pytest.mark.parametrize("bad", ["Bad_ID", "has space", "_lead", "ü"])
def test_bad_id_pattern(bad):
    lines = list(BASE)
    lines[0] = f"id: '{bad}'"
    e = only_error(parse(*lines))
    assert str(e) == "f.yaml:1: id: String should match pattern '^[a-z0-9][a-z0-9._-]*$'"


@pytest.mark.parametrize("good", ["a", "0-x", "sweep.clip-grad_norm.v2"])
def test_good_ids(good):
    lines = list(BASE)
    lines[0] = f"id: {good}"
    res = parse(*lines)
    assert res.errors == [] and res.cases[0].case.id == good


def test_bad_dtype():
    e = only_error(parse(*BASE, "dtypes: [float32, float8]"))
    assert (e.line, e.field) == (8, "dtypes[1]")
    assert e.problem == "Input should be 'float64', 'float32', 'float16' or 'bfloat16'"


def test_tolerance_without_reason():
    e = only_error(parse(*BASE, "tolerance:", "  float16: {rtol: 1.0e-2, atol: 1.0e-3}"))
    assert str(e) == "f.yaml:9: tolerance.float16.reason: required field is missing"


def test_tolerance_with_reason_is_accepted():
    res = parse(*BASE, "tolerance:", "  float16: {rtol: 1.0e-2, atol: 1.0e-3, reason: half accumulates}")
    assert res.errors == []
    t = res.cases[0].case.tolerance["float16"]
    assert (t.rtol, t.atol, t.reason) == (1e-2, 1e-3, "half accumulates")


def test_error_under_a_block_mapping_points_at_the_key_line():
    res = parse(*BASE, "tolerance:",   # 8
                "  float16:",          # 9
                "    rtol: 1.0e-2",    # 10
                "    atol: 1.0e-3")    # 11
    assert [str(e) for e in res.errors] == ["f.yaml:9: tolerance.float16.reason: required field is missing"]


def test_missing_loss_points_at_the_model_line():
    res = parse("id: c1", "title: t", "clip: {api: a.b}",
                "model:",                      # 4
                "  layers: [{type: relu}]",    # 5
                "  inputs: [1.0]")
    assert [str(e) for e in res.errors] == ["f.yaml:4: model.loss: required field is missing"]


def test_sweep_with_an_unknown_key():
    e = only_error(parse(*BASE, "sweep: {dtype: [float32]}"))  # 8
    assert (e.path, e.line) == ("f.yaml", 8)
    assert e.field == "sweep.dtype"
    assert e.problem == ("sweep key 'dtype' is not one of clip.args.NAME, dtypes, devices "
                         "(did you mean 'dtypes'?)")


def test_sweep_with_a_bare_argument_name_and_a_bad_dtype():
    e = only_error(parse(*BASE, "sweep: {norm_type: [1.0]}"))
    assert e.problem == "sweep key 'norm_type' is not one of clip.args.NAME, dtypes, devices"
    e = only_error(parse(*BASE, "sweep: {dtypes: [float32, float8]}"))
    assert e.problem == ("sweep dtypes: ['float8'] not in "
                         "['float64', 'float32', 'float16', 'bfloat16']")


def test_sweep_unknown_key_points_at_that_key():
    e = only_error(parse(*BASE, "sweep:",
                         "  clip.args.norm_type: [1.0]",  # 9
                         "  dtype: [float32]"))          # 10
    assert (e.line, e.field) == (10, "sweep.dtype")


# --------------------------------------------------------------------------- sweep expansion


def test_sweep_is_a_cartesian_product_in_file_order():
    res = parse(*BASE, "dtypes: [float64, float16]",
                "devices: [cpu]",
                "sweep:",
                "  clip.args.norm_type: [1.0, .inf]",
                "  dtypes: [float32, bfloat16]",
                "  clip.args.max_norm: [0.25, 2]")
    assert res.errors == []
    vs = res.cases[0].case.variants()
    assert len(vs) == 2 * 2 * 2
    got = [(v.label(), v.args, v.dtypes, v.devices) for v in vs]
    assert got == [
        ("norm_type=1.0-max_norm=0.25", {"max_norm": 0.25, "norm_type": 1.0}, ["float32"], ["cpu"]),
        ("norm_type=1.0-max_norm=2", {"max_norm": 2, "norm_type": 1.0}, ["float32"], ["cpu"]),
        ("norm_type=1.0-max_norm=0.25", {"max_norm": 0.25, "norm_type": 1.0}, ["bfloat16"], ["cpu"]),
        ("norm_type=1.0-max_norm=2", {"max_norm": 2, "norm_type": 1.0}, ["bfloat16"], ["cpu"]),
        ("norm_type=inf-max_norm=0.25", {"max_norm": 0.25, "norm_type": math.inf}, ["float32"], ["cpu"]),
        ("norm_type=inf-max_norm=2", {"max_norm": 2, "norm_type": math.inf}, ["float32"], ["cpu"]),
        ("norm_type=inf-max_norm=0.25", {"max_norm": 0.25, "norm_type": math.inf}, ["bfloat16"], ["cpu"]),
        ("norm_type=inf-max_norm=2", {"max_norm": 2, "norm_type": math.inf}, ["bfloat16"], ["cpu"]),
    ]
    # the case's own args are not modified by the expansion
    assert res.cases[0].case.clip.args == {"max_norm": 0.5}


def test_sweep_labels_for_negative_inf_nan_and_devices():
    res = parse(*BASE, "sweep:", "  clip.args.norm_type: [-.inf, .nan]", "  devices: [gpu, cpu]")
    vs = res.cases[0].case.variants()
    assert [v.label() for v in vs] == ["norm_type=-inf", "norm_type=-inf", "norm_type=nan", "norm_type=nan"]
    assert [v.devices for v in vs] == [["gpu"], ["cpu"], ["gpu"], ["cpu"]]
    assert [v.dtypes for v in vs] == [["float32"]] * 4


def test_no_sweep_is_one_variant_with_the_case_dtypes():
    res = parse(*BASE, "dtypes: [float64, float16]")
    (v,) = res.cases[0].case.variants()
    assert (v.label(), v.args, v.dtypes, v.devices, v.sweep) == (
        "", {"max_norm": 0.5}, ["float64", "float16"], ["cpu", "gpu"], {})


def test_bundled_norm_type_sweep_expands_to_seven_variants():
    res = load_paths([CASES / "sweeps" / "clip-grad-norm-norm-types.yaml"])
    assert res.errors == []
    vs = res.cases[0].case.variants()
    assert len(vs) == 7 * 4
    assert [v.label() for v in vs[::4]] == [
        "norm_type=0.5", "norm_type=1.0", "norm_type=2.0", "norm_type=3.0",
        "norm_type=inf", "norm_type=-inf", "norm_type=0.0"]
    assert [v.dtypes[0] for v in vs[:4]] == ["float64", "float32", "float16", "bfloat16"]


# --------------------------------------------------------------------------- safety


EVIL_TAG = "!!python/object/apply:os.system"


def test_python_tags_never_run(tmp_path):
    marker = tmp_path / "hacked"
    evil = f'id: {EVIL_TAG} ["echo hacked > {marker}"]\ntitle: t\n'
    # however it is rejected, nothing from the file may run
    try:
        parse_text(evil, "evil.yaml")
    except yaml.YAMLError:
        pass
    assert not marker.exists()
    for loader in (yamlsafe.LOADER, yamlsafe.PY_LOADER):  # the loaders the suite relies on
        with pytest.raises(yaml.constructor.ConstructorError):
            yaml.load(evil, Loader=loader)
    assert not marker.exists()


def test_exponent_floats_read_as_numbers_as_in_yaml_1_2():
    """PyYAML (YAML 1.1) reads `1e-6` as a string; the suite's loaders read a float, as the JSON
    Schema and editors do, and leave everything else as SafeLoader resolves it."""
    text = ("a: 1e-6\nb: -2E+3\nc: 1.5e10\nd: 7\ne: 1e\nf: '1e-6'\ng: 0x10\nh: .inf\n"
            "i: 1_000e2\nj: e5\n")
    for loader in (yamlsafe.LOADER, yamlsafe.PY_LOADER):
        got = yaml.load(text, Loader=loader)
        assert got == {"a": 1e-6, "b": -2000.0, "c": 1.5e10, "d": 7, "e": "1e", "f": "1e-6",
                       "g": 16, "h": math.inf, "i": 100000.0, "j": "e5"}
        assert isinstance(got["a"], float) and isinstance(got["d"], int)
    res = parse_text("id: x\ntitle: t\ngrads: {w: [1e20, -2.0]}\n"
                     "clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1e-6}}\n", "f.yaml")
    assert res.errors == []
    case = res.cases[0].case
    assert case.grads["w"] == [1e20, -2.0] and case.clip.args == {"max_norm": 1e-6}


def test_python_tag_is_reported_as_an_error(tmp_path):
    marker = tmp_path / "hacked"
    res = parse_text(f'id: {EVIL_TAG} ["echo hacked > {marker}"]\ntitle: t\n', "evil.yaml")
    assert res.cases == []
    e = only_error(res)
    assert (e.path, e.line) == ("evil.yaml", 1)
    assert "python/object/apply:os.system" in e.problem
    assert not marker.exists()


def test_python_tag_file_does_not_stop_the_others(tmp_path):
    (tmp_path / "a-evil.yaml").write_text(f'id: {EVIL_TAG} ["echo hacked"]\ntitle: t\n')
    (tmp_path / "b-good.yaml").write_text(text(*BASE))
    res = load_paths([tmp_path])
    assert [sc.case.id for sc in res.cases] == ["c1"]
    assert [e.path for e in res.errors] == [str(tmp_path / "a-evil.yaml")]


# --------------------------------------------------------------------------- load_paths


def _case(cid: str) -> str:
    return text(f"id: {cid}", "title: t", "grads: {w: [1.0]}", "clip: {api: a.b}")


def test_load_paths_keeps_going_and_reports_duplicate_ids(tmp_path):
    (tmp_path / "a.yaml").write_text(_case("one") + "---\n" + _case("two"))
    (tmp_path / "b-broken.yaml").write_text("id: x\ntitle: [unclosed\n")
    (tmp_path / "c-wrong.yaml").write_text(_case("three").replace("title: t", "titel: t"))
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "d.yml").write_text(_case("four") + "---\n" + _case("one"))
    (tmp_path / "notes.txt").write_text("not a case")
    res = load_paths([tmp_path])
    assert [sc.case.id for sc in res.cases] == ["one", "two", "four"]
    assert [(sc.path, sc.line) for sc in res.cases] == [
        (str(tmp_path / "a.yaml"), 1), (str(tmp_path / "a.yaml"), 6), (str(sub / "d.yml"), 1)]
    assert [str(e) for e in res.errors] == [
        f"{tmp_path / 'b-broken.yaml'}:3: YAML syntax error: expected ',' or ']', but got '<stream end>'",
        f"{tmp_path / 'c-wrong.yaml'}:1: title: required field is missing",
        f"{tmp_path / 'c-wrong.yaml'}:2: titel: unknown field (did you mean 'title'?)",
        f"{sub / 'd.yml'}:6: id: duplicate case id 'one' (also at {tmp_path / 'a.yaml'}:1)",
    ]


def test_load_paths_accepts_files_and_reports_unreadable_ones(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text(_case("x"))
    missing = tmp_path / "missing.yaml"
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"id: caf\xe9\n")
    res = load_paths([f, missing, bad])
    assert [sc.case.id for sc in res.cases] == ["x"]
    assert [(e.path, e.line) for e in res.errors] == [(str(missing), 1), (str(bad), 1)]
    assert res.errors[0].problem == "cannot read: no such file"
    assert res.errors[1].problem == "not UTF-8 text (byte 7: b'\\xe9')"


def test_bundled_cases_load_without_errors():
    res = load_paths([CASES])
    assert [str(e) for e in res.errors] == []
    ids = [sc.case.id for sc in res.cases]
    assert len(ids) == len(set(ids)) >= 9
    assert "seed-000-linear-clip-grad-norm" in ids


# --------------------------------------------------------------------------- JSON Schema


def test_json_schema_shape():
    s = json_schema()
    assert json.loads(json.dumps(s)) == s  # plain JSON
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["type"] == "object"
    assert {"id"} <= set(s["required"])
    assert {"required": ["clip"]} in s["oneOf"] and {"required": ["call"]} in s["oneOf"]  # call: synonym
    assert "grads" not in s["required"] and "model" not in s["required"]
    assert s["additionalProperties"] is False
    assert s["properties"]["id"]["pattern"] == ID_PATTERN
    # the layer's `in` field is exported under its YAML name, not the Python one
    assert "in" in s["$defs"]["Linear"]["properties"]
    assert "in_" not in s["$defs"]["Linear"]["properties"]


def _yaml_docs(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d is not None]


def test_bundled_cases_validate_against_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed in this environment")
    schema = json_schema()
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    files = sorted(CASES.rglob("*.yaml"))
    assert len(files) >= 9
    for f in files:
        for doc in _yaml_docs(f):
            errors = [e.message for e in validator.iter_errors(doc)]
            assert errors == [], f"{f}: {errors}"
    # and it is not a schema that accepts anything
    good = _yaml_docs(CASES / "seeds" / "seed-000-injected.yaml")[0]
    assert not validator.is_valid({k: v for k, v in good.items() if k != "clip"})
    assert not validator.is_valid(dict(good, dtyps=["float32"]))
    assert not validator.is_valid(dict(good, id="Bad ID"))


def test_tolerance_without_a_dtype_key_gets_one_message_naming_the_form():
    res = parse_text("id: x\ntitle: t\ngrads: {w: [1.0]}\n"
                     "clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1.0}}\n"
                     "tolerance: {rtol: 1.0e-3, atol: 1.0e-4}\n", "f.yaml")
    assert [str(e) for e in res.errors] == [
        "f.yaml:5: tolerance: tolerance is given per dtype: 'rtol' is not one of float64, float32, "
        "float16, bfloat16; write `tolerance: {float16: {rtol: ..., atol: ..., reason: ...}}`"]
    res = parse_text("id: x\ntitle: t\ngrads: {w: [1.0]}\n"
                     "clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1.0}}\n"
                     "tolerance:\n  flaot16: {rtol: 1.0e-3, atol: 1.0e-4, reason: why}\n", "f.yaml")
    assert len(res.errors) == 1 and "(did you mean 'float16'?)" in str(res.errors[0])
