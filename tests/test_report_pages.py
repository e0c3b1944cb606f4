"""The report's pages beyond the overview: API mapping, matrix, case detail, plots; results
schema 2 (case-level facts, registry snapshot, clipping factors) and merging several files."""

from __future__ import annotations

import copy
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import frameworks, registry, results
from conformance.report import render
from conformance.report import plots as plot_mod
from conformance.report.grid import script_json
from conformance.report.render import case_slugs, render_pages
from conformance.kinds.clipping.cell import Inputs
from conformance.summaries import clip_factors, summarize_inputs

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(2)>'
GLOBAL = "torch.nn.utils.clip_grad_norm_"


def _cell(case, api, backend, status, dtype="float32", difference=None, rel=0.0, **extra):
    rec = {"id": f"{case}[{api}-{dtype}-cpu]", "case": case, "title": f"title of {case}", "tags": ["t1"],
           "source_api": GLOBAL, "api": api, "backend": backend, "device": "cpu", "dtype": dtype,
           "status": status, "difference": difference, "max_abs_err": rel / 10, "max_rel_err": rel,
           "mismatched": 0 if status == "match" else 3, "message": "", "backend_version": "9.9"}
    rec.update(extra)
    return rec


def doc_v2() -> dict:
    """A schema-2 document: torch (identity), Paddle's per-tensor ClipGradByNorm shown by a known
    cell, one unexplained mismatch on paddle.nn.utils.clip_grad_norm_, a model cell with raw grads."""
    params = {"w": {"size": 2, "shape": [2], "mismatched": 2, "max_abs_err": 0.3, "max_rel_err": 0.5,
                    "factor": {"got": 1.0, "want": 0.25}},
              "b": {"size": 2, "shape": [2], "mismatched": 0, "max_abs_err": 0.0, "max_rel_err": 0.0,
                    "factor": {"got": 0.5, "want": 0.25}},
              "before clipping: w": {"size": 2, "shape": [2], "mismatched": 0, "max_abs_err": 1e-9,
                                     "max_rel_err": 2e-9}}
    res = [
        _cell("case-a", GLOBAL, "torch", "match", rel=1e-8, factor={"got": 0.25, "want": 0.25}),
        _cell("case-a", "paddle.nn.ClipGradByNorm", "paddle", "known", difference="paddle-clipgradbynorm-per-tensor",
              rel=0.5, params=params, factor={"got": 0.61, "want": 0.25}, total_norm={"got": None, "want": 4.0},
              message="per tensor"),
        _cell("case-b", "paddle.nn.utils.clip_grad_norm_", "paddle", "mismatch", rel=0.125,
              message="w: 3/4 elements differ (unexplained-marker)"),
    ]
    cases = {
        "case-a": {"title": "title of case-a", "path": "cases/x/case-a.yaml:1", "source": "a test",
                   "tags": ["t1"], "source_api": GLOBAL, "kind": "model",
                   "inputs": {"dtype": "float32", "tensors": [
                       {"name": "inputs", "shape": [1, 3], "size": 3, "min": 0.2, "max": 0.5, "mean": 0.3,
                        "l2": 0.574456, "nan": 0, "inf": 0, "zeros": 0},
                       {"name": "grad w (before clipping)", "shape": [2], "size": 2, "min": -3.0, "max": 4.0,
                        "mean": 0.5, "l2": 5.0, "nan": 1, "inf": 0, "zeros": 0}]},
                   "snippets": {GLOBAL: {"backend": "torch", "cell": res[0]["id"], "text": "import torch\n# snippet-torch"},
                                "paddle.nn.ClipGradByNorm": {"backend": "paddle", "cell": res[1]["id"],
                                                             "text": "import paddle\n# snippet-paddle"}}},
        "case-b": {"title": "title of case-b", "path": "cases/x/case-b.yaml:1", "tags": ["t2"], "source_api": GLOBAL},
    }
    return {"schema": 2, "created": "2026-01-01T00:00:00+00:00", "suite_version": "0.1.0",
            "machine": {"host": "cpu-box", "python": "3.11.7", "platform": "Linux"},
            "backends": {"torch": {"version": "2.13.0", "devices": ["cpu"]},
                         "paddle": {"version": "3.3.1", "devices": ["cpu"]}},
            "registry": registry.load().snapshot(), "cases": cases, "results": res}


@pytest.fixture
def pages():
    return render_pages(doc_v2())


def as_text(html: str) -> str:
    import html as html_mod

    return " ".join(html_mod.unescape(re.sub(r"<[^>]+>", " ", html)).split())


# --------------------------------------------------------------------------- mapping page


def _mapping(pages: dict) -> str:
    """mapping.html and its pages per source API (mapping/<api>.html), one after the other."""
    return pages["mapping.html"] + "".join(v for k, v in sorted(pages.items()) if k.startswith("mapping/"))


def test_mapping_tables_have_the_seed_columns_and_every_source(pages):
    assert "<thead>" not in pages["mapping.html"]  # the list of source APIs, each linked to its page
    assert all('href="%s"' % k in pages["mapping.html"] for k in pages if k.startswith("mapping/"))
    html = _mapping(pages)
    heads = re.findall(r"<thead><tr>(.*?)</tr></thead>", html, re.S)
    snap = registry.load().snapshot()
    assert len(heads) == len({m["source"] for m in snap["mappings"]})
    # the seeds' PyTorch | MindSpore | Paddle first, then every other framework folder by its order
    titles = [fw.title for fw in frameworks.discover().values()]
    assert titles[:3] == ["PyTorch", "MindSpore", "Paddle"]
    assert re.findall(r"<th>(.*?)</th>", heads[0]) == ["Categories", "Subcategories", *titles, "Differences"]


def _mapping_body(html: str, target: str) -> str:
    hits = re.findall(r'<tbody class="mp[^"]*" id="map-\d+-%s" data-target="%s">(.*?)</tbody>'
                      % (re.escape(GLOBAL), re.escape(target)), html, re.S)
    assert len(hits) == 1, target
    return hits[0]


def test_mapping_flags_misleading_and_links_evidence(pages):
    html = _mapping(pages)
    body = _mapping_body(html, "paddle.nn.ClipGradByNorm")
    text = as_text(body)
    assert "Misleading mapping: Not a replacement for torch's global clip" in text
    # argument correspondences: max_norm -> clip_norm renamed, norm_type dropped
    assert "max_norm clip_norm Only the name differs." in text
    assert "norm_type - No counterpart: dropped by this mapping." in text
    # the declared difference with its evidence and how large it measured
    assert "Shown by 1 cell (max rel err 0.5, max abs err 0.05 against the source's oracle)" in text
    assert 'href="../cases/case-a.html"' in body  # (from mapping/<api>.html)
    # its L2-only sibling was shown by no cell of this document: flagged
    l2 = body.split("paddle-clipgradbynorm-l2-only", 1)[1].split("</tr>", 1)[0]
    assert "Declared, but no cell of these results showed it." in as_text(l2)
    # the global Paddle mapping is flagged for what it does wrong (L2 only), not as per-tensor
    head = as_text(_mapping_body(html, "paddle.nn.ClipGradByGlobalNorm.via_sgd").split("</tr>", 1)[0])
    assert "Misleading mapping: L2 only" in head and "own L2 norm" not in head
    assert "Misleading" not in as_text(_mapping_body(html, "torch.nn.utils.clip_grad_norm_").split("</tr>", 1)[0])


def test_mapping_lists_unexplained_mismatches(pages):
    body = _mapping_body(_mapping(pages), "paddle.nn.utils.clip_grad_norm_")
    text = as_text(body)
    assert "No declared difference explains these cells:" in text
    assert "case-b[paddle.nn.utils.clip_grad_norm_-float32-cpu]" in text and "unexplained-marker" in text
    summary = as_text(pages["mapping.html"].split('<section class="source"', 1)[0])
    assert re.search(r"\b1 mismatching cells that no declaration explains", summary)


def test_registry_marks_the_misleading_mappings():
    flagged = {(m.source, m.target) for m in registry.load().mappings if m.misleading}
    for target in ("paddle.nn.ClipGradByNorm", "paddle.nn.ClipGradByNorm.via_sgd", "mindspore.nn.ClipByNorm",
                   "paddle.nn.ClipGradByGlobalNorm", "mindspore.ops.clip_by_global_norm"):
        assert (GLOBAL, target) in flagged, target
    assert (GLOBAL, GLOBAL) not in flagged


def test_schema1_document_renders_with_a_note_instead_of_tables():
    doc = doc_v2()
    doc["schema"] = 1
    del doc["registry"], doc["cases"]
    out = render_pages(doc)
    assert "carries no registry snapshot" in out["mapping.html"]
    assert "No input summary in these results" in out["cases/case-a.html"]


# --------------------------------------------------------------------------- case page


def test_case_page_shows_inputs_metrics_raw_grads_factor_difference_and_snippets(pages):
    html = pages["cases/case-a.html"]
    text = as_text(html)
    assert "grad w (before clipping) [2] -3 4 0.5 5 1 0 0" in text  # shape, min, max, mean, L2, NaN, inf, zeros
    assert "cases/x/case-a.yaml:1" in text
    # per-parameter errors after clipping, with the factor got vs the oracle's
    assert "w 2 0.3 0.5 2/2 1 0.25" in text
    assert "b 2 0 0 0/2 0.5 0.25" in text
    # the raw (pre-clip) gradient comparison, its own table
    assert re.search(r"Raw gradient \(before clipping\).*?w 2 1e-09 2e-09 0/2", text)
    assert "Clipping factor got 0.61 · oracle 0.25" in text
    assert "Returned norm got — · oracle 4" in text
    # the declared difference that explains the known cell, with its sentence from the registry
    # (once per page, in the list of differences shown, which the cell links to)
    assert "paddle-clipgradbynorm-per-tensor ClipGradByNorm clips every gradient by its own L2 norm" in text
    assert '<a href="#d-paddle-clipgradbynorm-per-tensor">' in html
    # one snippet per API
    assert "# snippet-torch" in html and "# snippet-paddle" in html


def test_case_slugs_never_carry_paths_or_markup():
    slugs = case_slugs(["ok-id.1", "../../etc/passwd", HOSTILE, "OK-ID.1", "ok-id.1"])
    assert slugs["ok-id.1"] == "ok-id.1"
    assert len(set(slugs.values())) == len(slugs) == 4
    for slug in slugs.values():
        assert re.fullmatch(r"[a-z0-9_][a-z0-9._-]*", slug), slug


# --------------------------------------------------------------------------- matrix page


def _grid(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="g-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def _grid_counts(data: dict) -> list:
    """(case, API, dtype, device, status, n) of a grid's data block, sorted."""
    return sorted((data["cases"][r[0]][0], data["apis"][r[1]], data["dtypes"][r[2]], data["devices"][r[3]],
                   data["statuses"][r[4]], r[5]) for r in data["counts"])


def test_matrix_is_a_grid_per_backend_counting_every_cell(pages):
    assert 'href="matrix/paddle.html"' in pages["matrix.html"] and 'href="matrix/torch.html"' in pages["matrix.html"]
    torch, paddle = _grid(pages["matrix/torch.html"]), _grid(pages["matrix/paddle.html"])
    assert [(c, a, st, n) for c, a, _, _, st, n in _grid_counts(torch)] == [("case-a", GLOBAL, "match", 1)]
    assert [(c, a, st, n) for c, a, _, _, st, n in _grid_counts(paddle)] == [
        ("case-a", "paddle.nn.ClipGradByNorm", "known", 1), ("case-b", "paddle.nn.utils.clip_grad_norm_", "mismatch", 1)]
    case_a = next(c for c in torch["cases"] if c[0] == "case-a")
    assert case_a[2] == "case-a" and [torch["tags"][t] for t in case_a[3]] == ["t1"]  # grid.js: ../cases/case-a.html
    # each grid cell links its worst cell, on the page that shows it
    for data in (torch, paddle):
        for ci, ai, anchor in data["links"]:
            page = pages["cases/%s.html" % data["cases"][ci][2]]
            assert 'id="%s"' % anchor in page


def test_case_index_links_every_case_page_problems_first(pages):
    html = pages["cases.html"]
    links = re.findall(r'<a href="(cases/[^"]+\.html)">([^<]+)</a>', html)
    assert [case for _, case in links] == ["case-b", "case-a"]  # case-b has the mismatch
    assert all(href in pages for href, _ in links)
    row_a = html[html.index(">case-a<"):].split("</tr>")[0]
    assert as_text(row_a).split()[-2:] == ["1", "1"]  # one match, one known; nothing else
    for page in ("index.html", "matrix.html", "mapping.html"):  # every page's navigation reaches it
        assert 'href="cases.html"' in pages[page]
    assert 'href="../cases.html"' in next(v for k, v in pages.items() if k.startswith("cases/"))


def test_script_json_cannot_close_its_element():
    text = str(script_json({"t": "</script><script>alert(1)</script><!-- & \u2028", "x": None}))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"t": "</script><script>alert(1)</script><!-- & \u2028", "x": None}


def test_nonfinite_errors_reach_the_case_page_as_text():
    doc = doc_v2()
    doc["results"][2]["max_rel_err"] = float("inf")
    doc["results"][1]["max_abs_err"] = float("nan")
    pages = render_pages(doc)
    text = "".join(v for k, v in pages.items() if k.startswith("cases/"))
    assert re.search(r"<td>inf(</td>|<td|\n)", text) or "max rel inf" in text
    assert re.search(r"<td>NaN(</td>|<td|\n)", text) or "max abs NaN" in text


# --------------------------------------------------------------------------- hostile text


def test_hostile_title_and_message_are_text_on_every_page(tmp_path):
    doc = doc_v2()
    for r in doc["results"]:
        r["title"] = HOSTILE + HOSTILE_ATTR
        r["message"] = HOSTILE_ATTR
        r["tags"] = [HOSTILE]
    doc["cases"]["case-a"]["title"] = HOSTILE + HOSTILE_ATTR
    doc["cases"]["case-a"]["snippets"][GLOBAL]["text"] = HOSTILE
    doc["registry"]["mappings"][0]["notes"] = HOSTILE_ATTR
    out = render(doc, tmp_path)
    files = [out, tmp_path / "matrix.html", tmp_path / "mapping.html", tmp_path / "cases.html",
             *sorted((tmp_path / "matrix").glob("*.html")), *sorted((tmp_path / "cases").glob("*.html"))]
    seen_escaped = 0
    for path in files:
        html = path.read_text(encoding="utf-8")
        assert "<script>alert" not in html, path
        assert "<img" not in html and "onerror=alert(2)>" not in html, path
        # the only script elements: the page's own (CSP-hashed) script and the JSON data block
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert tag in ("<script>", '<script type="application/json" id="g-data">'), (path, tag)
        seen_escaped += "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert seen_escaped >= 3  # overview, mapping and case pages show it as text
    blob = _grid((tmp_path / "matrix" / "torch.html").read_text(encoding="utf-8"))
    assert blob["cases"][0][1] == HOSTILE + HOSTILE_ATTR  # the grid shows it via textContent


# --------------------------------------------------------------------------- overview and merge


def test_overview_has_one_card_per_backend_device_and_machine(tmp_path):
    cpu = doc_v2()
    gpu = copy.deepcopy(cpu)
    gpu["machine"]["host"] = "gpu-box"
    for r in gpu["results"]:
        r["device"] = "gpu"
        r["id"] = r["id"].replace("-cpu]", "-gpu]")
    (tmp_path / "a.json").write_text(json.dumps(cpu))
    (tmp_path / "b.json").write_text(json.dumps(gpu))
    out = tmp_path / "html"
    r = subprocess.run([sys.executable, "-m", "conformance.cli", "report", str(tmp_path / "a.json"),
                        str(tmp_path / "b.json"), "--out", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    html = (out / "index.html").read_text(encoding="utf-8")
    heads = re.findall(r"<th>(\w+) <span class=\"muted\">on ([\w-]+)</span></th>", html)
    assert heads == [("cpu", "cpu-box"), ("gpu", "gpu-box")]  # side by side
    cards = re.findall(r'<div class="card" data-backend="(\w+)" data-device="(\w+)">', html)
    assert sorted(cards) == [("paddle", "cpu"), ("paddle", "gpu"), ("torch", "cpu"), ("torch", "gpu")]
    assert "Merged from</dt><dd>2 machines" in html


def test_compiled_cells_get_their_own_column_beside_the_eager_ones(tmp_path):
    doc = doc_v2()
    compiled = copy.deepcopy(doc["results"])
    for r in compiled:
        r["mode"] = "compiled"
        r["id"] = r["id"].replace("-cpu]", "-cpu-compiled]")
    doc["results"] += compiled
    out = render(doc, tmp_path)
    html = out.read_text(encoding="utf-8")
    heads = re.findall(r"<th>([\w ]+) <span class=\"muted\">on ([\w-]+)</span></th>", html)
    assert heads == [("cpu", "cpu-box"), ("cpu compiled", "cpu-box")]
    data = _grid((tmp_path / "matrix" / "torch.html").read_text(encoding="utf-8"))
    assert sorted(data["devices"]) == ["cpu", "cpu compiled"]


def test_merged_conflict_is_shown_not_overwritten(tmp_path):
    a = doc_v2()
    b = copy.deepcopy(a)
    b["machine"]["host"] = "other-box"
    b["results"][0]["status"] = "mismatch"
    b["results"][0]["message"] = "drifted"
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    from conformance.cli import main

    assert main(["report", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "h")]) == 0
    case = (tmp_path / "h" / "cases" / "case-a.html").read_text(encoding="utf-8")
    assert case.count("different outcomes across runs (cpu-box: match, other-box: mismatch)") == 2
    assert "on cpu-box" in case and "on other-box" in case
    data = _grid((tmp_path / "h" / "matrix" / "torch.html").read_text(encoding="utf-8"))
    # both records are counted: the grid cell is red (mismatch) and says 1 match, 1 mismatch
    assert [(a, st, n) for c, a, _, _, st, n in _grid_counts(data) if c == "case-a"] == [
        (GLOBAL, "match", 1), (GLOBAL, "mismatch", 1)]
    index = (tmp_path / "h" / "index.html").read_text(encoding="utf-8")
    assert "different outcomes across runs" in index  # the mismatching record is in "problems first"


# --------------------------------------------------------------------------- plots


def test_plots_are_inline_svg_and_deterministic(pages):
    pytest.importorskip("matplotlib")
    svgs = re.findall(r"<svg\b.*?</svg>", pages["index.html"], re.S)
    assert len(svgs) == 2
    assert render_pages(doc_v2())["index.html"] == pages["index.html"]
    for svg in svgs:
        # the points are one embedded PNG (rasterized: one vector path per cell made a 500 KB
        # plot); nothing else is an image, and nothing is a URL
        images = re.findall(r"<image\b[^>]*>", svg)
        assert len(images) <= 1 and all('xlink:href="data:image/png;base64,' in i for i in images)
        text = re.sub(r'xlink:href="data:image/png;base64,[^"]*"', "", svg)
        assert "http" not in text and "<script" not in text


def test_plot_labels_cannot_carry_markup():
    pytest.importorskip("matplotlib")
    cells = [dict(_cell("c", HOSTILE, "torch", "match", rel=1e-3), dtype=HOSTILE_ATTR)]
    svg = plot_mod.rel_error_plot(cells)["svg"]
    assert svg and "<script" not in svg and "<img" not in svg
    assert "?script?alert(1)?/script?  ???img src=x onerror=alert(2)?" in svg  # drawn as inert text


def test_without_matplotlib_the_report_says_why(monkeypatch):
    monkeypatch.setattr(plot_mod, "_pyplot", lambda: (None, "matplotlib is not installed (test)"))
    html = render_pages(doc_v2())["index.html"]
    assert "<svg" not in html
    assert html.count("matplotlib is not installed (test)") == 2


# --------------------------------------------------------------------------- schema 2 records


def test_clip_factors_global_vs_per_tensor():
    before = {"w": np.array([3.0, 4.0]), "b": np.array([0.0, 12.0]), "none": None}  # norms 5, 12; total 13
    # a global clip to 6.5 scales both by 0.5; a per-tensor clip to 6.5 leaves w alone, b by 6.5/12
    global_ = {"w": before["w"] * 0.5, "b": before["b"] * 0.5}
    per_tensor = {"w": before["w"], "b": before["b"] * (6.5 / 12)}
    params = {"w": {}, "b": {}}
    total = clip_factors(before, per_tensor, global_, params)
    assert total["want"] == pytest.approx(0.5)
    assert total["got"] == pytest.approx(np.sqrt(25 + 6.5 ** 2) / 13)
    assert params["w"]["factor"] == {"got": pytest.approx(1.0), "want": pytest.approx(0.5)}
    assert params["b"]["factor"] == {"got": pytest.approx(6.5 / 12), "want": pytest.approx(0.5)}
    # zero or non-finite input norms give no factor rather than a NaN
    zero = clip_factors({"z": np.zeros(2)}, {"z": np.zeros(2)}, {"z": np.zeros(2)}, {"z": {}})
    assert zero == {"got": None, "want": None}
    nan = clip_factors({"n": np.array([np.nan, 1.0])}, {"n": np.array([1.0, 1.0])}, {}, {})
    assert nan == {"got": None, "want": None}


def test_summarize_inputs_counts_nonfinite_and_zeros():
    grads = {"w": np.array([[1.0, np.nan], [0.0, -np.inf]]), "b": None}
    info = summarize_inputs(Inputs(["w", "b"], grads, {}), "float32")
    w, b = info["tensors"]
    assert info["dtype"] == "float32"
    assert (w["name"], w["shape"], w["min"], w["max"], w["mean"]) == ("grad w", [2, 2], 0.0, 1.0, 0.5)
    assert (w["nan"], w["inf"], w["zeros"], w["l2"]) == (1, 1, 1, None)  # an infinite norm is no number
    assert b == {"name": "grad b", "shape": None}


def test_writer_moves_case_info_into_cases_and_journal_keeps_it(tmp_path):
    w = results.Writer(tmp_path / "results.json", registry={"apis": {}, "mappings": []})
    w.add(_cell("c1", GLOBAL, "torch", "match", case_info={"title": "T", "snippets": {"a": {"text": "x"}}}))
    w.add(_cell("c1", "paddle.nn.ClipGradByNorm", "paddle", "match", case_info={"snippets": {"b": {"text": "y"}}}))
    journal = results.load(tmp_path / "results.jsonl")
    doc = w.close()
    for d in (doc, journal, results.load(tmp_path / "results.json")):
        assert d["schema"] == results.SCHEMA == 5 and d["registry"] == {"apis": {}, "mappings": []}
        assert d["cases"] == {"c1": {"title": "T", "snippets": {"a": {"text": "x"}, "b": {"text": "y"}}}}
        assert all("case_info" not in r for r in d["results"]) and len(d["results"]) == 2


# --------------------------------------------------------------------------- pytest --report


@pytest.mark.framework
def test_pytest_report_writes_every_page_from_a_real_torch_run(tmp_path):
    from conformance import frameworks

    python = frameworks.default_python("torch")
    if not python:
        pytest.skip("no interpreter with torch (set CONFORMANCE_TORCH_PYTHON)")
    html = tmp_path / "html"
    r = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "cases" / "seeds" / "seed-000-clip-grad-norm.yaml"),
                        "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--backend", f"torch={python}",
                        "--report", str(html)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    doc = results.load(html / "results.json")
    assert doc["schema"] == results.SCHEMA and doc["registry"]["mappings"]
    case = "seed-000-linear-clip-grad-norm"
    info = doc["cases"][case]
    assert info["path"].endswith("seed-000-clip-grad-norm.yaml:2")
    # the seed's worked example: zero-initialised Linear(3,2), raw weight grads +-0.1/0.25, bias +-0.5
    grads = {t["name"]: t for t in info["inputs"]["tensors"]}
    assert grads["grad 0.bias (before clipping)"]["l2"] == pytest.approx(np.sqrt(0.5), rel=1e-6)
    assert "torch.nn.utils.clip_grad_norm_" in info["snippets"]
    cpu = next(x for x in doc["results"] if x["device"] == "cpu")
    # clip to 0.5 of a total norm 0.8154753 (the seed's number): every gradient scaled by 0.6131
    assert cpu["factor"]["got"] == pytest.approx(0.5 / 0.8154753, rel=1e-5)
    assert cpu["factor"]["want"] == pytest.approx(0.5 / (0.8154753 + 1e-6), rel=1e-6)
    assert {p: m["shape"] for p, m in cpu["params"].items() if "before" not in p and "(" not in p} == \
        {"0.weight": [2, 3], "0.bias": [2]}
    for page in ("index.html", "matrix.html", "mapping.html", f"cases/{case}.html"):
        assert (html / page).is_file(), page


# --------------------------------------------------------------------------- snippets written once


def test_a_worked_example_links_its_apis_snippet_and_a_failure_keeps_its_own():
    """A known cell whose reproduction is the API's snippet but for the first comment links that
    snippet instead of repeating it; a mismatch keeps its reproduction inline."""
    doc = doc_v2()
    code = "import paddle\nclip(x)  # the-shared-code\n"
    doc["cases"]["case-a"]["snippets"]["paddle.nn.ClipGradByNorm"]["text"] = "# case-a[written for]\n" + code
    doc["results"][1]["reproduce"] = "# %s\n# case file: x.yaml:1\n" % doc["results"][1]["id"] + code
    page = render_pages(doc)["cases/case-a.html"]
    assert page.count("the-shared-code") == 1
    assert 'href="#s-paddle.nn.ClipGradByNorm"' in page and 'id="s-paddle.nn.ClipGradByNorm"' in page
    doc["results"][1]["status"] = "mismatch"
    page = render_pages(doc)["cases/case-a.html"]
    assert page.count("the-shared-code") == 2  # a failure's own reproduction stays on the page
    doc["results"][1].update(status="known", reproduce=doc["results"][1]["reproduce"] + "other()\n")
    page = render_pages(doc)["cases/case-a.html"]  # a line more: the snippet, and the line to add after its last
    assert page.count("the-shared-code") == 2 and "  clip(x)  # the-shared-code\n+ other()\n</pre>" in page
    doc["results"][1].update(reproduce=doc["results"][1]["reproduce"] + "".join("more(%d)\n" % i for i in range(6)))
    page = render_pages(doc)["cases/case-a.html"]  # seven lines more: its own, whole
    assert page.count("the-shared-code") == 2 and "edits" not in page and "more(5)" in page


def test_a_split_case_shows_its_snippets_once(monkeypatch):
    """A split case's backend pages link their snippets on the case page, not repeat them."""
    from conformance.report import cases as case_pages

    monkeypatch.setattr(case_pages, "CASE_SPLIT", 1)
    pages = render_pages(doc_v2())
    main = pages["cases/case-a.html"]
    assert "# snippet-paddle" in main and "# snippet-torch" in main
    part = next(v for k, v in pages.items() if k.startswith("cases/case-a/") and "paddle" in k)
    assert "# snippet-paddle" not in part and "# snippet-torch" not in part
    assert 'href="../case-a.html#s-paddle.nn.ClipGradByNorm"' in part


def test_a_backends_snippets_show_their_shared_setup_once():
    """Two paddle snippets that share their first lines: the case page shows those lines once, as
    the paddle setup, and each snippet as a link to it and its own lines; a known cell whose
    reproduction starts with them links it too; together they are the snippets' code again."""
    doc = doc_v2()
    setup = "import numpy as np\nimport paddle\n" + "".join(
        f"g{i} = paddle.to_tensor(np.arange({i}, {i + 8}, dtype=np.float32))  # setup-line\n" for i in range(6))
    doc["results"].append(_cell("case-a", "paddle.nn.ClipGradByGlobalNorm", "paddle", "match"))
    snippets = doc["cases"]["case-a"]["snippets"]
    snippets["paddle.nn.ClipGradByNorm"]["text"] = "# for one cell\n" + setup + "\nout = per_tensor(g0)  # own-a\n"
    snippets["paddle.nn.ClipGradByGlobalNorm"] = {"backend": "paddle", "cell": doc["results"][-1]["id"],
                                                  "text": "# for another\n" + setup + "\nout = global_(g0)  # own-b\n"}
    doc["results"][1]["reproduce"] = "# the known cell\n" + setup + "\nout = per_tensor(g0, 2.0)  # own-c\n"
    page = render_pages(doc)["cases/case-a.html"]
    assert page.count("# setup-line") == 6  # once, not three times
    # the setup says once that each API's lines below follow it; the worked example, one line
    # from own-a's snippet, links that snippet and shows the line
    assert 'id="setup-paddle"' in page and 'href="#setup-paddle"' not in page
    assert "Paste it, then one API's lines below" in page
    assert "- out = per_tensor(g0)  # own-a\n+ out = per_tensor(g0, 2.0)  # own-c\n" in page
    for own in ("own-b", "own-c"):
        assert page.count(own) == 1
    shown = re.findall(r'<pre class="reproduce">(.*?)</pre>', page, re.S)
    setup_shown = html.unescape(next(t for t in shown if "setup-line" in t))
    assert setup_shown == setup
    rest = html.unescape(next(t for t in shown if "own-a" in t))
    assert [line for line in (setup_shown + rest).splitlines() if line.strip() and not line.startswith("#")] == \
        [line for line in snippets["paddle.nn.ClipGradByNorm"]["text"].splitlines() if line.strip() and not line.startswith("#")]
    # a failure's reproduction stays whole: the cell a reader came for, pasted as it is
    doc["results"][1]["status"] = "mismatch"
    page = render_pages(doc)["cases/case-a.html"]
    assert page.count("# setup-line") == 12 and page.count('href="#setup-paddle"') == 0
    # a worked example of many lines of its own: those lines, after a link to the setup
    doc["results"][1].update(status="known", reproduce="# the known cell\n" + setup + "".join("own_%d()\n" % i for i in range(8)))
    page = render_pages(doc)["cases/case-a.html"]
    assert page.count("# setup-line") == 6 and page.count('href="#setup-paddle"') == 1 and "own_7()" in page


def test_a_rows_oracle_value_reads_equals_where_it_is_the_cells_own():
    doc = doc_v2()
    doc["results"].append(_cell("case-a", "paddle.nn.ClipGradByNorm", "paddle", "known", difference="paddle-clipgradbynorm-per-tensor",
                                rel=0.5, factor={"got": 0.61, "want": 0.25}, total_norm={"got": 4.0, "want": 4.0}, sweep={"n": 2},
                                id="case-a[paddle.nn.ClipGradByNorm-float32-cpu-n=2]"))
    page = render_pages(doc)["cases/case-a.html"]
    rows = dict(re.findall(r'<tr id="(c\d+)"><td>([^<]*(?:<td>[^<]*)*)', page))
    assert rows["c2"] == "float32-cpu<td>1e-09<td>1e-08<td>0<td><td><td><td>0.25<td>="  # torch: no norm; the oracle's factor
    assert rows["c1"] == "float32-cpu-n=2<td>0.05<td>0.5<td>3<td><td>4<td>=<td>0.61<td>0.25"  # the same norm, another factor


def test_a_worked_example_a_few_lines_from_its_apis_snippet_shows_those_lines():
    """A known cell in full whose reproduction is its API's snippet with a line or two changed
    (another dtype) links the snippet and shows the lines to replace; applying them to the
    snippet gives the reproduction's code again. More than a few changed lines: shown whole."""
    doc = doc_v2()
    body = "".join("line %d\n" % i for i in range(12))
    snippet = "# cell of the snippet\nimport paddle\n" + body + "g = paddle.to_tensor(x, dtype='float32')\nprint(g)\n"
    doc["cases"]["case-a"]["snippets"]["paddle.nn.ClipGradByNorm"]["text"] = snippet
    repro = snippet.replace("# cell of the snippet", "# the known cell").replace("'float32'", "'bfloat16'")
    doc["results"][1]["reproduce"] = repro
    page = render_pages(doc)["cases/case-a.html"]
    edits = html.unescape(re.search(r'<pre class="reproduce edits">(.*?)</pre>', page, re.S).group(1))
    assert edits == "- g = paddle.to_tensor(x, dtype='float32')\n+ g = paddle.to_tensor(x, dtype='bfloat16')\n"
    assert 'href="#s-paddle.nn.ClipGradByNorm">the snippet of' in page and "line 11" not in page.split("Reproduce it")[1].split("</pre>")[0]
    old, new = [line[2:] for line in edits.splitlines()]
    assert snippet.replace(old, new).split("\n", 1)[1] == repro.split("\n", 1)[1]
    # seven changed lines: the reproduction whole
    doc["results"][1]["reproduce"] = snippet.replace("line ", "LINE ")
    page = render_pages(doc)["cases/case-a.html"]
    assert 'class="reproduce edits"' not in page and "LINE 11" in page


def test_a_snippet_leaves_its_case_file_line_to_the_page():
    doc = doc_v2()
    snippets = doc["cases"]["case-a"]["snippets"]
    snippets[GLOBAL]["text"] = "# case-a[x]\n# case file: cases/x/case-a.yaml:1\nimport torch\n# snippet-torch\n"
    page = render_pages(doc)["cases/case-a.html"]
    assert "<dt>Case file</dt><dd><code>cases/x/case-a.yaml:1</code></dd>" in page
    assert "# case file:" not in page and "# case-a[x]\nimport torch\n# snippet-torch" in page


def test_a_case_page_gives_a_differences_first_words_and_links_its_whole_declaration():
    pages = render_pages(doc_v2())
    page = pages["cases/case-a.html"]
    dd = re.search(r'<dt id="d-paddle-clipgradbynorm-per-tensor">.*?<dd>(.*?)</dd>', page, re.S).group(1)
    link = re.search(r'<a href="\.\./(mapping/[^"#]+)#(d-paddle-clipgradbynorm-per-tensor)">the declaration</a>', dd)
    assert link and dd.endswith("\u2026 " + link.group(0)) and len(html.unescape(dd.split(" <a ")[0])) <= 122
    assert 'id="%s"' % link.group(2) in pages[link.group(1)]  # the mapping page's row of that difference
