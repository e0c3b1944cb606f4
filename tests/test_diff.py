"""conformance diff: cells matched by their stable key across versions, what changed, which
changes are regressions, the exit code and the escaped HTML page."""

from __future__ import annotations

import math

from conformance import cli, results
from conformance.diff import diff, record_key


def _rec(id_, status, backend="paddle", key=True, **kw):
    r = {"id": id_, "backend": backend, "status": status, "difference": None, "message": "",
         "max_abs_err": 0.0, "max_rel_err": 0.0, **kw}
    if key:
        r["key"] = f"{backend}|{id_}|eager"
    return r


def _doc(version, recs, schema=3):
    return {"schema": schema, "backends": {"paddle": {"version": version}}, "results": recs}


def test_what_changed_and_which_changes_are_regressions():
    old = _doc("3.0.0", [
        _rec("a[x]", "match"), _rec("b[x]", "known", difference="d1"), _rec("c[x]", "match"),
        _rec("d[x]", "unsupported", message="no kernel"), _rec("e[x]", "match", max_rel_err=1e-9),
        _rec("f[x]", "known", difference="d1"), _rec("g[x]", "skipped"), _rec("old-only[x]", "match"),
        _rec("h[x]", "mismatch", max_rel_err=math.nan)])
    new = _doc("3.3.1", [
        _rec("a[x]", "match"), _rec("b[x]", "match"), _rec("c[x]", "known", difference="d2"),
        _rec("d[x]", "unsupported", message="another message"), _rec("e[x]", "match", max_rel_err=2e-9),
        _rec("f[x]", "error"), _rec("g[x]", "mismatch"), _rec("new-only[x]", "match"),
        _rec("h[x]", "mismatch", max_rel_err=math.nan)])
    d = diff(old, new)
    by_id = {c.id: c for c in d.changes}
    assert set(by_id) == {"b[x]", "c[x]", "d[x]", "e[x]", "f[x]", "old-only[x]", "new-only[x]"}
    assert (by_id["b[x]"].what, by_id["b[x]"].regression) == ("status", False)  # newly agrees
    assert (by_id["c[x]"].what, by_id["c[x]"].regression) == ("status", True)   # matched, no longer
    assert (by_id["f[x]"].what, by_id["f[x]"].regression) == ("status", True)   # explained -> error
    assert by_id["d[x]"].what == "explanation" and by_id["e[x]"].what == "numbers"
    assert "max_rel_err 1e-09 -> 2e-09" in by_id["e[x]"].line()
    assert d.unchanged == 3  # a, g (skipped in one run), h (NaN equals NaN)
    assert (d.old_versions, d.new_versions) == ({"paddle": "3.0.0"}, {"paddle": "3.3.1"})


def test_a_moved_source_line_in_an_error_is_not_a_change():
    msg = "gap (ValueError: max_norm should be greater than 0 (at /paddle/phi/infermeta/unary.cc:{}))"
    old = _doc("3.0.0", [_rec("a[x]", "unsupported", message=msg.format(596))])
    new = _doc("3.3.1", [_rec("a[x]", "unsupported", message=msg.format(593))])
    assert diff(old, new).changes == []
    new = _doc("3.3.1", [_rec("a[x]", "unsupported", message=msg.format(593).replace("greater", "larger"))])
    assert [c.what for c in diff(old, new).changes] == ["explanation"]


def test_records_without_a_key_match_by_backend_and_id():
    assert record_key({"id": "a[x]", "backend": "torch"}) == "torch|a[x]"
    old = _doc("1", [_rec("a[x]", "match", key=False)], schema=2)
    new = _doc("2", [_rec("a[x]", "match", key=False)])
    assert diff(old, new).changes == []


def test_the_cli_exits_1_on_a_regression_and_escapes_the_page(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    results.write_json(old, _doc("3.0.0", [_rec("a[x]", "match"), _rec("b[x]", "match")]))
    results.write_json(new, _doc("3.3.1", [_rec("a[x]", "match"),
                                           _rec("b[x]", "mismatch", message="<script>alert(1)</script>")]))
    page = tmp_path / "diff.html"
    assert cli.main(["diff", str(old), str(new), "--html", str(page)]) == 1
    out = capsys.readouterr()
    assert "REGRESSION b[x] [paddle] status: match -> mismatch" in out.out
    assert "paddle 3.0.0 -> paddle 3.3.1: 1 status; 1 cells the same; 1 regressions" in out.err
    html = page.read_text()
    assert "&lt;script&gt;" in html and "<script>" not in html
    results.write_json(new, _doc("3.3.1", [_rec("a[x]", "match"), _rec("b[x]", "match")]))
    assert cli.main(["diff", str(old), str(new)]) == 0


def test_the_page_groups_changes_of_one_kind_and_counts_them():
    """30 cells of one API that went from known to match, and one regression: two kinds, the
    regression first, each with its count; ids beyond IDS_SHOWN are counted, not listed."""
    from conformance.report import diffpage
    old = ([_rec(f"c{i:02d}[x]", "known", api="paddle.a", difference="d1") for i in range(30)]
           + [_rec("r[x]", "match", api="paddle.b")])
    new = ([_rec(f"c{i:02d}[x]", "match", api="paddle.a") for i in range(30)]
           + [_rec("r[x]", "mismatch", api="paddle.b", max_rel_err=0.5)])
    html = diffpage.render(diff(_doc("1", old), _doc("2", new)), "summary")
    assert "status (31 cells, 2 kinds)" in html
    assert html.index("paddle.b") < html.index("paddle.a")  # the regression first
    assert '<td class="n">30</td>' in html and "known (d1)" in html
    assert f"and {30 - diffpage.IDS_SHOWN} more" in html
    assert "c29[x]" not in html and f"c{diffpage.IDS_SHOWN - 1:02d}[x]" in html
