"""The per-pair verdicts of the report's front table (conformance/report/pairs.py): which cells
are the common configuration, the verdict words, the "differs when" condition sets, and the
pair page with its fix."""

from __future__ import annotations

import re

import pytest

from conformance.report import pairs
from conformance.report.render import render

SRC, TGT = "torch.nn.utils.clip_grad_norm_", "paddle.nn.utils.clip_grad_norm_"


def tensor(name="w", shape=(2, 2), lo=-1.0, hi=1.0, nan=0, inf=0):
    size = 1
    for n in shape:
        size *= n
    return {"name": name, "shape": list(shape), "size": size, "min": lo, "max": hi, "nan": nan, "inf": inf}


def info(*tensors, **args):
    return {"inputs": {"dtype": "float32", "tensors": list(tensors) or [tensor()]}, "args": args}


def cell(case, status="match", dtype="float32", mode="eager", sweep=None, difference=None, rel=0.0,
         source=SRC, api=TGT):
    raw = {"id": f"{case}[{api}-{dtype}-cpu]", "case": case, "source_api": source, "api": api,
           "backend": api.split(".")[0], "dtype": dtype, "mode": mode, "device": "cpu",
           "sweep": sweep or {}, "status": status, "difference": difference, "max_rel_err": rel}
    view = {k: raw[k] for k in ("id", "case", "source_api", "api", "backend", "status", "difference")}
    view.update(raw=raw, href=f"cases/{case}.html", anchor="c0")
    return view


def verdict_of(cells, cases, mappings=(), kind="clipping", snippets=None):
    snippets = snippets or {}
    out = pairs.build_pairs(cells, cases, mappings, lambda api: kind,
                            lambda case, api: snippets.get((case, api), {}))
    assert len(out) == 1
    return out[0]


@pytest.mark.parametrize("record, case, expected", [
    ({"dtype": "float32", "mode": "eager"}, info(), ()),
    ({"dtype": "float16", "mode": "compiled"}, info(), ("float16", "compiled")),
    ({"dtype": "float32", "sweep": {"norm_type": "inf"}}, info(), ("norm_type=inf",)),
    ({"dtype": "float32", "sweep": {"norm_type": 2.0}}, info(), ()),
    ({"dtype": "float32"}, info(norm_type=1.0, error_if_nonfinite=True), ("norm_type=1", "error_if_nonfinite")),
    ({"dtype": "float32"}, info(tensor(nan=1), tensor("b", inf=2)), ("NaN", "inf")),
    ({"dtype": "float32"}, info(tensor(shape=(0,))), ("empty",)),
    ({"dtype": "float32"}, info(tensor(shape=())), ("0-d",)),
    ({"dtype": "float32"}, {"inputs": {"tensors": []}}, ("no gradient",)),
    ({"dtype": "float32"}, info(tensor(lo=-1e20, hi=1.0)), ("huge values",)),
    ({"dtype": "float32"}, info(tensor(lo=-1e-20, hi=1e-20)), ("tiny values",)),
    ({"dtype": "float32"}, info(tensor(lo=0.0, hi=0.0)), ()),  # all zeros: not tiny
    ({"dtype": "float32"}, info(max_norm=0.0), ("max_norm=0",)),
    ({"dtype": "float32"}, info(clip_value_min=1.0, clip_value_max=-1.0), ("min > max",)),
    ({"dtype": "float32"}, info(clip_value_min=None, clip_value_max=1.0), ("one-sided bound",)),
    ({"dtype": "float32"}, info(min=None, max=1.0), ()),  # Paddle's min=None is -max
    ({"dtype": "float32"}, dict(info(), mixed_dtypes=True), ("mixed dtypes",)),
])
def test_conditions_name_how_a_cell_leaves_the_common_configuration(record, case, expected):
    assert pairs.conditions(record, case) == expected


def test_drop_in_when_every_cell_matches():
    p = verdict_of([cell("a"), cell("b", dtype="float64")], {"a": info(), "b": info()})
    assert (p["verdict"], p["n_common"], p["n_edge"], p["except"]) == ("drop-in", 1, 1, [])


def test_drop_in_except_lists_the_smallest_condition_sets():
    cells = [cell("a"), cell("b", dtype="float16", status="unsupported"),
             cell("c", dtype="float16", status="known", difference="d1"),
             cell("c", dtype="float32", status="known", difference="d2", sweep={"norm_type": "inf"})]
    cases = {"a": info(), "b": info(), "c": info(tensor(nan=1))}
    p = verdict_of(cells, cases)
    assert p["verdict"] == "drop-in except"
    # float16 + NaN is covered by float16; NaN + norm_type=inf is its own smallest set
    assert [e["when"] for e in p["except"]] == ["float16", "NaN + norm_type=inf"]
    assert p["except"][0]["counts"] == {"unsupported": 1, "known": 1}
    assert p["except"][0]["examples"][0]["href"] == "cases/b.html#c0"  # the set's own cell first


def test_not_a_replacement_when_a_common_cell_differs_by_much():
    cells = [cell("a"), cell("b", status="known", difference="per-tensor", rel=0.9)]
    p = verdict_of(cells, {"a": info(), "b": info()})
    assert p["verdict"] == "not a replacement"
    assert p["common_differences"] == ["per-tensor"] and p["common_bad"] == {"known": 1}


def test_a_small_declared_difference_is_a_condition_not_a_verdict():
    cells = [cell("a"), cell("b", status="known", difference="no-eps", rel=2e-5)]
    p = verdict_of(cells, {"a": info(), "b": info()})
    assert (p["verdict"], [e["when"] for e in p["except"]]) == ("drop-in except", ["no-eps"])
    # just above SMALL it is not small any more
    cells[1]["raw"]["max_rel_err"] = 2 * pairs.SMALL
    assert verdict_of(cells, {"a": info(), "b": info()})["verdict"] == "not a replacement"


def test_a_rounding_difference_agrees():
    mappings = [{"source": SRC, "target": TGT, "numerics": [{"id": "sum-order"}]}]
    cells = [cell("a"), cell("b", status="known", difference="sum-order", rel=0.5)]
    p = verdict_of(cells, {"a": info(), "b": info()}, mappings)
    assert (p["verdict"], p["common_match"], p["rounding"]) == ("drop-in", 2, 1)


def test_derivation_differences_are_conditions_and_unsupported_common_cells_are_not():
    cells = [cell("a", source="torch.autograd.grad", api="paddle.grad"),
             cell("b", status="known", difference="unused-none", rel=None, source="torch.autograd.grad",
                  api="paddle.grad")]
    p = verdict_of(cells, {"a": info(), "b": info()}, kind="derivation")
    assert (p["verdict"], [e["when"] for e in p["except"]]) == ("drop-in except", ["unused-none"])
    p = verdict_of([cell("a", status="unsupported")], {"a": info()})
    assert (p["verdict"], p["common_bad"]) == ("not a replacement", {"unsupported": 1})
    p = verdict_of([cell("a", dtype="float64")], {"a": info()})
    assert p["verdict"] == "not measured in the common configuration"


def test_skipped_cells_count_nowhere():
    p = verdict_of([cell("a"), cell("b", status="skipped")], {"a": info(), "b": info()})
    assert (p["n_common"], p["n_edge"]) == (1, 0)


def test_the_fix_is_the_snippet_of_a_common_cell_that_matched():
    cells = [cell("a", dtype="float64"), cell("b")]
    snippets = {("a", TGT): {"cell": cells[0]["id"], "text": "float64 call"},
                ("b", TGT): {"cell": cells[1]["id"], "text": "import paddle\nclip()"}}
    p = verdict_of(cells, {"a": info(), "b": info()}, snippets=snippets)
    assert p["fix"] == {"text": "import paddle\nclip()", "cell": cells[1]["id"], "case": "b"}
    # a snippet written for another cell of the case is not a measured fix of this pair
    snippets[("b", TGT)]["cell"] = "b[other]"
    assert verdict_of(cells, {"a": info(), "b": info()}, snippets=snippets)["fix"] is None


def test_the_index_leads_with_the_pairs_and_each_pair_has_a_page(tmp_path):
    record = cell("a")["raw"]
    doc = {"schema": 4, "results": [dict(record, id="a[x]")],
           "cases": {"a": dict(info(), title="<b>t</b>", snippets={TGT: {"cell": "a[x]", "text": "print('<x>')"}})},
           "registry": {"mappings": [{"source": SRC, "target": TGT, "misleading": "<i>careful</i>"}],
                        "apis": {SRC: {"kind": "clipping"}}}}
    index = render(doc, tmp_path)
    html = index.read_text(encoding="utf-8")
    assert html.index('id="pairs"') < html.index('id="overview"')
    slug = pairs.pair_slug(SRC, TGT)
    assert f'href="pairs/{slug}.html"' in html and "&lt;i&gt;careful&lt;/i&gt;" in html
    page = (tmp_path / "pairs" / f"{slug}.html").read_text(encoding="utf-8")
    assert "Verdict: drop-in" in page and "print(&#39;&lt;x&gt;&#39;)" in page


def test_the_index_says_pass_or_fail_first(tmp_path):
    record = dict(cell("a")["raw"], id="a[x]")
    doc = {"schema": 4, "results": [record], "cases": {"a": info()}}
    html = render(doc, tmp_path / "pass").read_text(encoding="utf-8")
    assert '<p class="verdict-banner pass"' in html and "FAIL" not in html
    doc["results"].append(dict(record, id="a[y]", status="mismatch"))
    html = render(doc, tmp_path / "fail").read_text(encoding="utf-8")
    assert "<strong>FAIL</strong>: 1 cell mismatched" in html


def test_a_pair_that_is_no_replacement_points_to_the_frameworks_replacements():
    other = "paddle.nn.ClipGradByNorm"
    cells = [cell("a"), cell("a", api=other, status="known", difference="per-tensor", rel=0.5)]
    out = pairs.build_pairs(cells, {"a": info()}, [], lambda api: "clipping", lambda case, api: {})
    by_target = {p["target"]: p for p in out}
    assert by_target[other]["verdict"] == "not a replacement"
    assert by_target[other]["instead"] == [{"target": TGT, "slug": pairs.pair_slug(SRC, TGT), "verdict": "drop-in"}]
    assert by_target[TGT]["instead"] == []


def test_the_pair_plot_draws_error_over_tolerance_and_links_each_differing_cell():
    pytest.importorskip("matplotlib")
    from conformance.report import plots

    hostile = '<script>alert(1)</script>"'
    rows = [("common configuration", [{"ratio": 0.5, "status": "match", "id": "a[m]", "href": "../cases/a.html#c0"},
                                      {"ratio": 40.0, "status": "known", "id": hostile, "href": "../cases/a.html#c1"}]),
            ("float16", [{"ratio": None, "status": "unsupported", "id": "a[u]", "href": "../cases/a.html#c2"}])]
    out = plots.pair_error_plot(rows)
    svg = out["svg"]
    assert svg.count("<title>") == 1 and '<a xlink:href="../cases/a.html#c1"><title>' in svg
    assert "<script>" not in svg and "&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in svg
    assert 'target="_blank"' not in svg and "float16" not in svg  # a row with nothing to draw is left out
    assert out["note"] == "1 cells with no finite error (raised, unsupported or non-finite) are not drawn."
    assert plots.pair_error_plot(rows) == out  # deterministic


def test_dots_of_one_colour_are_one_path_that_carries_its_style_once():
    pytest.importorskip("matplotlib")
    from conformance.report import plots

    rows = [("common configuration", [{"ratio": r, "status": "match", "id": "a[%d]" % i, "href": "../cases/a.html#c%d" % i}
                                      for i, r in enumerate((0.1, 0.2, 0.3, 0.5, 0.7))])]
    svg = plots.pair_error_plot(rows)["svg"]
    # the five matching cells, counted in two half-decade bins: one path of two round dots, its colour said once
    dots = re.findall(r'<path clip-path="[^"]*" d="((?:M[-\d.]+ [-\d.]+h0)+)" style="([^"]*)"/>', svg)
    assert len(dots) == 1 and dots[0][0].count("h0") == 2 and "stroke: #1a7f37" in dots[0][1]
    assert "<!--" not in svg and "<g/>" not in svg


def test_linked_dots_on_one_spot_are_one_dot_and_the_svg_carries_no_dead_weight():
    """Cells of one status at one error (to a hundredth of a decade) are one linked dot whose
    title counts the others; the linked dots of one colour share one group; no font fallback
    list per text, no rotate(-0), no id that nothing refers to."""
    pytest.importorskip("matplotlib")
    from conformance.report import plots

    same = [{"ratio": 40.0, "status": "known", "id": "a[%d]" % i, "href": "../cases/a.html#c%d" % i} for i in range(3)]
    apart = [{"ratio": 400.0, "status": "known", "id": "a[far]", "href": "../cases/a.html#c9"}]
    svg = plots.pair_error_plot([("float16", same + apart)])["svg"]
    titles = re.findall(r"<title>(.*?)</title>", svg)
    assert titles == ["a[0] and 2 more cells on this spot", "a[far]"]
    assert re.search(r'<g clip-path="[^"]*" style="fill: #0a58ca; fill-opacity: 0.9">(<a xlink:href="[^"]*"><title>[^<]*</title><use [^>]*/></a>){2}</g>', svg)
    assert "font-family" not in svg.replace('<svg style="font-family: sans-serif"', "", 1)
    assert "rotate(-0 " not in svg
    ids = re.findall(r' id="([^"]*)"', svg)
    assert ids and all(("#" + i) in svg for i in ids)
