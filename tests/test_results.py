"""Results JSON: the incremental journal, reading a journal cut short, and merging documents from
several machines."""

from __future__ import annotations

import json
import platform
import socket


from conformance import __version__, results


def rec(cell_id: str, status: str = "match", difference=None, **extra) -> dict:
    r = {"id": cell_id, "case": cell_id.split("[")[0], "api": "torch.nn.utils.clip_grad_norm_",
         "backend": "torch", "device": "cpu", "dtype": "float32", "status": status,
         "difference": difference, "max_abs_err": 0.0, "max_rel_err": 0.0, "mismatched": 0, "message": ""}
    r.update(extra)
    return r


# --------------------------------------------------------------------------- Writer


def test_journal_is_flushed_after_every_add(tmp_path):
    out = tmp_path / "run" / "results.json"
    w = results.Writer(out, backends={"torch": {"version": "2.13.0", "devices": ["cpu"]}})
    try:
        journal = tmp_path / "run" / "results.jsonl"
        assert w.journal == journal
        head = results.load(journal)
        assert head["results"] == []
        assert head["schema"] == results.SCHEMA == 5
        assert head["suite_version"] == __version__
        assert head["machine"]["host"] == socket.gethostname()
        assert head["machine"]["python"] == platform.python_version()
        assert head["backends"] == {"torch": {"version": "2.13.0", "devices": ["cpu"]}}

        w.add(rec("a[x]"))
        assert [r["id"] for r in results.load(journal)["results"]] == ["a[x]"]
        w.add(rec("b[x]", "mismatch", max_abs_err=0.5, mismatched=3))
        doc = results.load(journal)
        assert [r["id"] for r in doc["results"]] == ["a[x]", "b[x]"]
        assert doc["results"][1]["max_abs_err"] == 0.5 and doc["results"][1]["mismatched"] == 3

        w.set_backends({"paddle": {"version": "3.0.0", "devices": ["cpu"]}})
        doc = results.load(journal)
        assert sorted(doc["backends"]) == ["paddle", "torch"]
        assert len(doc["results"]) == 2  # the backends line is not a result
        assert journal.read_text().count("\n") == 4
        assert not out.exists()  # results.json only at close()
    finally:
        final = w.close()
    assert out.exists()
    on_disk = results.load(out)
    assert on_disk == final
    assert [r["id"] for r in on_disk["results"]] == ["a[x]", "b[x]"]
    assert on_disk["results"][1]["status"] == "mismatch"
    assert on_disk["backends"] == {"torch": {"version": "2.13.0", "devices": ["cpu"]},
                                   "paddle": {"version": "3.0.0", "devices": ["cpu"]}}
    assert not (tmp_path / "run" / "results.json.tmp").exists()
    # a finished run keeps one record: the journal (the same records) goes once results.json is on disk
    assert not out.with_suffix(".jsonl").exists()
    assert w.close() == final  # closing twice is harmless


def test_unfinished_run_keeps_its_journal_and_resume_of_a_finished_run_reads_results_json(tmp_path):
    out = tmp_path / "results.json"
    w = results.Writer(out, planned=3)
    w.add(rec("a[x]"))
    w.close()  # 1 of 3: interrupted
    assert out.exists() and out.with_suffix(".jsonl").exists()
    assert results.done_ids(out) == {"a[x]"}
    w = results.Writer(out, planned=2, resume=True)
    w.add(rec("b[x]"))
    w.add(rec("c[x]"))
    doc = w.close()
    assert [r["id"] for r in doc["results"]] == ["a[x]", "b[x]", "c[x]"] and doc["done"] == doc["planned"] == 3
    assert not out.with_suffix(".jsonl").exists()
    assert results.done_ids(out) == {"a[x]", "b[x]", "c[x]"}  # read from results.json
    # resuming a finished folder starts a journal from results.json, then drops it when done
    w = results.Writer(out, planned=1, resume=True)
    assert [r["id"] for r in results.load(out.with_suffix(".jsonl"))["results"]] == ["a[x]", "b[x]", "c[x]"]
    w.add(rec("d[x]"))
    doc = w.close()
    assert [r["id"] for r in doc["results"]] == ["a[x]", "b[x]", "c[x]", "d[x]"]
    assert results.load(out)["results"] == doc["results"] and not out.with_suffix(".jsonl").exists()


def test_results_json_is_the_journal_s_document_and_a_resume_takes_the_new_registry(tmp_path):
    """``close`` derives results.json from the journal (the writer keeps no records): what a
    record carried, its case's snippets, a later backends line and a resumed run's registry and
    backends are all in the document."""
    out = tmp_path / "results.json"
    w = results.Writer(out, registry={"apis": {"a": 1}}, planned=3)
    w.add(dict(rec("a[x]", message="m" * 40), case_info={"title": "A", "snippets": {"torch.x": {"text": "t"}}}))
    w.add(rec("a[y]", "known", "d1", message="m" * 40))
    w.set_backends({"torch": {"version": "2.13.0", "devices": ["cpu"]}})
    assert not hasattr(w, "doc")  # no records kept
    doc = w.close()
    assert [r["id"] for r in doc["results"]] == ["a[x]", "a[y]"] and doc["done"] == 2 and doc["planned"] == 3
    assert doc["cases"]["a"]["snippets"]["torch.x"]["text"] == "t" and doc["cases"]["a"]["title"] == "A"
    assert all(r["message"] == "m" * 40 for r in doc["results"])
    w = results.Writer(out, registry={"apis": {"b": 2}}, planned=1, resume=True,
                       backends={"paddle": {"version": "3.3.1", "devices": ["cpu"]}})
    assert w.earlier == 2
    w.add(rec("a[z]"))
    doc = w.close()
    assert doc["registry"] == {"apis": {"b": 2}} and doc["planned"] == doc["done"] == 3
    assert sorted(doc["backends"]) == ["paddle", "torch"]
    assert results.load(out) == doc and not out.with_suffix(".jsonl").exists()


def test_nonfinite_metrics_survive_the_round_trip(tmp_path):
    w = results.Writer(tmp_path / "results.json")
    w.add(rec("a[x]", "mismatch", max_abs_err=float("inf"), max_rel_err=float("nan")))
    doc = results.load(tmp_path / "results.jsonl")
    r = doc["results"][0]
    assert r["max_abs_err"] == float("inf") and r["max_rel_err"] != r["max_rel_err"]
    w.close()
    r = results.load(tmp_path / "results.json")["results"][0]
    assert r["max_abs_err"] == float("inf")


def test_journal_cut_mid_line_keeps_the_complete_records(tmp_path):
    w = results.Writer(tmp_path / "results.json", planned=4)  # unfinished: the journal stays
    for i in range(3):
        w.add(rec(f"c{i}[x]", message=f"cell {i}"))
    w.close()
    journal = tmp_path / "results.jsonl"
    data = journal.read_bytes()
    last_line_start = data.rstrip(b"\n").rfind(b"\n") + 1
    cut = data[: last_line_start + 25]  # a kill in the middle of the third record
    assert not cut.endswith(b"\n")
    journal.write_bytes(cut)
    doc = results.load(journal)
    assert [r["id"] for r in doc["results"]] == ["c0[x]", "c1[x]"]
    assert [r["message"] for r in doc["results"]] == ["cell 0", "cell 1"]
    assert doc["schema"] == results.SCHEMA


def test_journal_cut_inside_the_header(tmp_path):
    journal = tmp_path / "results.jsonl"
    journal.write_text('{"schema": 1, "crea')
    assert results.load(journal) == {"results": []}


def test_load_reads_results_json(tmp_path):
    doc = {"schema": 1, "results": [rec("a[x]")]}
    (tmp_path / "r.json").write_text(json.dumps(doc))
    assert results.load(tmp_path / "r.json") == doc


# --------------------------------------------------------------------------- schema 5: repeated texts once


_REASON = "paddle.nn.ClipGradByNorm does not support bfloat16 on this device (kernel not registered)"
_SNIP = "# case a, cell a[torch.nn.utils.clip_grad_norm_-float32-cpu]\nimport torch\nprint(torch.ones(2))\n"


def _doc_with_repeats():
    doc = results.header()
    doc["cases"] = {"a": {"snippets": {"torch.nn.utils.clip_grad_norm_": {"backend": "torch", "text": _SNIP}}}}
    doc["results"] = [rec("a[%d]" % i, "unsupported", message=_REASON) for i in range(3)] + [
        rec("a[x]", "known", message="short"),
        rec("a[y]", "known", reproduce="# cell a[y]\n# second comment\nimport torch\nprint(torch.ones(2))\n"),
        rec("a[z]", "known", reproduce="# cell a[z]\nimport torch\nprint(torch.zeros(2))\n"),  # other code: whole
        rec("a[w]", "known", message=_REASON + " (once)")]
    return doc


def test_repeated_messages_and_snippet_reproductions_are_written_once_and_read_back_whole(tmp_path):
    doc = _doc_with_repeats()
    out = tmp_path / "results.json"
    results.write_json(out, doc)
    text = out.read_text()
    raw = json.loads(text)
    assert raw["schema"] == 5
    assert raw["strings"] == [_REASON]  # the message three records carry; not the one-off, not the short one
    assert text.count(_REASON) == 2  # the table, and the one-off message that extends it
    assert [r["message"] for r in raw["results"][:3]] == [{"$str": 0}] * 3
    assert raw["results"][4]["reproduce"] == {"$snippet": "torch.nn.utils.clip_grad_norm_",
                                              "head": "# cell a[y]\n# second comment\n"}
    assert isinstance(raw["results"][5]["reproduce"], str)
    back = results.load(out)
    assert back["results"] == doc["results"] and "strings" not in back
    # a resumed or merged document rewritten keeps reading back whole
    results.write_json(tmp_path / "again.json", back)
    assert results.load(tmp_path / "again.json")["results"] == doc["results"]


def test_ids_and_keys_that_the_fields_spell_are_written_as_their_sweep_label(tmp_path):
    """plan.cell_id and plan.cell_key spell a cell's id and key from its fields: a record whose
    two are those is written with its sweep point's label only (a third of a results file was the
    two); one that differs (a hand-made id) keeps both."""
    from conformance.plan import cell_id

    src = "torch.nn.utils.clip_grad_norm_"
    api = "paddle.nn.ClipGradByNorm"
    cells = [
        dict(rec(cell_id("a", api, "float16", "cpu", "norm_type=inf", "compiled")), api=api, backend="paddle", dtype="float16",
             mode="compiled", source_api=src, key="|".join(["paddle", "a", src, api, "cpu", "compiled", "float16", "norm_type=inf"])),
        dict(rec(cell_id("a", api + "@3.0", "float32", "cpu")), api=api, backend="paddle@3.0", mode="eager", source_api=src,
             key="|".join(["paddle", "a", src, api, "cpu", "eager", "float32", ""])),
        dict(rec("a[hand-made]"), source_api=src, mode="eager", key="torch|a|x|y|cpu|eager|float32|"),
    ]
    assert cells[0]["id"] == "a[paddle.nn.ClipGradByNorm-float16-cpu-compiled-norm_type=inf]"
    assert cells[1]["id"] == "a[paddle.nn.ClipGradByNorm@3.0-float32-cpu]"
    doc = dict(results.header(), cases={}, results=cells)
    out = tmp_path / "results.json"
    results.write_json(out, doc)
    raw = json.loads(out.read_text())["results"]
    assert [r.get("$point") for r in raw] == ["norm_type=inf", "", None]
    assert "id" not in raw[0] and "key" not in raw[0] and raw[2]["id"] == "a[hand-made]"
    assert results.load(out)["results"] == cells


def test_a_reference_that_does_not_resolve_reads_as_a_text_that_says_so(tmp_path):
    doc = {"schema": 5, "strings": ["x" * 20], "cases": {},
           "results": [rec("a[1]", message={"$str": 7}), rec("a[2]", message={"$str": "0"}),
                       rec("a[3]", reproduce={"$snippet": "nope", "head": "# a[3]\n"}),
                       rec("a[4]", message={"$str": 0})]}
    (tmp_path / "r.json").write_text(json.dumps(doc))
    got = results.load(tmp_path / "r.json")["results"]
    assert got[0]["message"] == "(results file: no string 7 in its strings table)"
    assert got[1]["message"] == "(results file: no string '0' in its strings table)"
    assert got[2]["reproduce"] == "# (results file: no snippet of nope in its case's entry)\n"
    assert got[3]["message"] == "x" * 20


def _writer_records():
    """Records a run writes: a case's facts on its first record, a message repeated by three
    records and one carried once, a reproduction that is its case's snippet, a non-finite metric,
    and ids and keys that their fields spell (written as their sweep label)."""
    from conformance.plan import cell_id

    src = api = "torch.nn.utils.clip_grad_norm_"
    info = {"title": "A", "path": "cases/a.yaml", "tags": ["t"], "source_api": src,
            "snippets": {api: {"backend": "torch", "text": _SNIP}}}
    out = []
    for i, (status, extra) in enumerate([
            ("unsupported", {"message": _REASON}), ("unsupported", {"message": _REASON}),
            ("known", {"reproduce": "# cell a[2]\nimport torch\nprint(torch.ones(2))\n"}),
            ("mismatch", {"message": "x" * 30, "max_abs_err": float("inf"), "max_rel_err": float("nan")}),
            ("unsupported", {"message": _REASON}), ("match", {})]):
        label = f"max_norm={i}"
        r = dict(rec(cell_id("a", api, "float32", "cpu", label), status, **extra), source_api=src, mode="eager",
                 title="A", path="cases/a.yaml", tags=["t"],
                 key="|".join(["torch", "a", src, api, "cpu", "eager", "float32", label]))
        out.append(dict(r, case_info=info) if i == 0 else r)
    return out


def _same(a: dict, b: dict) -> bool:
    """Equal, NaN equal to NaN (json's encoding of a record: floats spelled out)."""
    return results.dumps(a, sort_keys=True) == results.dumps(b, sort_keys=True)


def test_close_copies_the_journal_s_record_lines_into_results_json(tmp_path):
    """The journal's lines are results.json's records as they are (interned messages, snippet
    references, sweep labels): ``close`` copies them after the document's head, and results.json
    reads back as the journal does, every record whole."""
    import shutil

    out = tmp_path / "results.json"
    w = results.Writer(out, registry={"apis": {"a": 1}})
    records = _writer_records()
    for r in records:
        w.add(r)
    w.set_backends({"torch": {"version": "2.13.0", "devices": ["cpu"]}})
    shutil.copy(w.journal, tmp_path / "journal.jsonl")
    doc = w.close()
    raw = json.loads(out.read_text())
    assert raw["strings"] == [_REASON]  # interned at its second record; the once-only message is not
    assert [r.get("message") for r in raw["results"]] == [_REASON, {"$str": 0}, "", "x" * 30, {"$str": 0}, ""]
    assert raw["results"][2]["reproduce"] == {"$snippet": "torch.nn.utils.clip_grad_norm_", "head": "# cell a[2]\n"}
    assert all("$point" in r and "id" not in r and "title" not in r for r in raw["results"])
    assert raw["done"] == 6 and raw["cases"]["a"]["title"] == "A" and "case_info" not in out.read_text()
    from_journal = dict(results.load(tmp_path / "journal.jsonl"), done=6)  # (close adds ``done``)
    assert _same(doc, results.load(out)) and _same(doc, from_journal)
    whole = [{k: v for k, v in r.items() if k != "case_info"} for r in records]
    assert _same(doc["results"], whole)
    assert _same(results.load(tmp_path / "journal.jsonl")["results"], whole)
    # what the old derivation (every record read back and encoded again) writes reads the same
    results.write_json(tmp_path / "again.json", from_journal)
    assert _same(results.load(tmp_path / "again.json"), doc)


def test_close_without_records_reads_nothing_back_and_the_tally_counts_every_cell(tmp_path):
    out = tmp_path / "results.json"
    w = results.Writer(out)
    for r in _writer_records():
        w.add(r)
    doc = w.close(records=False)
    assert "results" not in doc and doc["done"] == 6 and w.done == 6
    assert w.tally == {("torch", "cpu", "unsupported"): 3, ("torch", "cpu", "known"): 1,
                       ("torch", "cpu", "mismatch"): 1, ("torch", "cpu", "match"): 1}
    assert w.problems == [("mismatch", "a[torch.nn.utils.clip_grad_norm_-float32-cpu-max_norm=3]", "x" * 30)]
    assert len(results.load(out)["results"]) == 6


def test_a_resumed_journal_goes_on_numbering_its_strings_and_a_resumed_finished_run_keeps_case_fields(tmp_path):
    out = tmp_path / "results.json"
    records = _writer_records()
    w = results.Writer(out, planned=10)
    for r in records[:2]:  # the second interns _REASON as string 0
        w.add(r)
    w.close()  # unfinished: the journal stays
    w = results.Writer(out, planned=4, resume=True)
    assert w.earlier == 2 and w.done == 2
    w.add(dict(records[2], message="y" * 20))
    w.add(dict(records[3], message="y" * 20))  # string 1
    w.add(records[4])  # string 0 again
    w.add(records[5])
    assert '{"$str":1}' in w.journal.read_text() and w.journal.read_text().count(_REASON) == 2
    doc = w.close()
    assert [r["message"] for r in doc["results"]] == [_REASON, _REASON, "y" * 20, "y" * 20, _REASON, ""]
    assert all(r["title"] == "A" and r["path"] == "cases/a.yaml" for r in doc["results"])
    # resuming the finished folder: the journal starts from results.json, case facts included
    w = results.Writer(out, planned=0, resume=True)
    assert all(r["title"] == "A" for r in results.load(w.journal)["results"])
    doc = w.close()
    assert len(doc["results"]) == 6 and all(r["title"] == "A" for r in doc["results"])


# --------------------------------------------------------------------------- merge


def doc(host: str, created: str, backends: dict, records: list) -> dict:
    return {"schema": 1, "created": created, "machine": {"host": host, "python": "3.11.7"},
            "backends": backends, "results": records}


def test_merge_collapses_identical_and_keeps_conflicts():
    a = doc("alpha", "2026-01-01T00:00:00+00:00",
            {"torch": {"version": "2.13.0", "devices": ["cpu"]}},
            [rec("same[x]"), rec("diff[x]", "match"), rec("known[x]", "known", "d1"), rec("only-a[x]")])
    b = doc("beta", "2026-01-02T00:00:00+00:00",
            {"torch": {"version": "2.13.0", "devices": ["gpu", "cpu"]},
             "paddle": {"version": "3.0.0", "devices": ["cpu"]}},
            [rec("same[x]", max_abs_err=1e-9), rec("diff[x]", "mismatch"), rec("known[x]", "known", "d2"),
             rec("only-b[x]", "skipped")])
    m = results.merge([a, b])
    assert m["schema"] == 1
    assert m["machines"] == [
        {"host": "alpha", "python": "3.11.7", "created": "2026-01-01T00:00:00+00:00"},
        {"host": "beta", "python": "3.11.7", "created": "2026-01-02T00:00:00+00:00"},
    ]
    assert m["backends"] == {"torch": {"version": "2.13.0", "devices": ["cpu", "gpu"]},
                             "paddle": {"version": "3.0.0", "devices": ["cpu"]}}
    got = [(r["id"], r["status"], r["host"], r.get("conflict")) for r in m["results"]]
    conflict_status = "different outcomes across runs (alpha: match, beta: mismatch)"
    conflict_diff = "different outcomes across runs (alpha: known, beta: known)"
    assert got == [
        ("same[x]", "match", "alpha", None),
        ("diff[x]", "match", "alpha", conflict_status),
        ("diff[x]", "mismatch", "beta", conflict_status),
        ("known[x]", "known", "alpha", conflict_diff),
        ("known[x]", "known", "beta", conflict_diff),
        ("only-a[x]", "match", "alpha", None),
        ("only-b[x]", "skipped", "beta", None),
    ]
    assert [r["difference"] for r in m["results"] if r["id"] == "known[x]"] == ["d1", "d2"]
    # the inputs are not modified
    assert "host" not in a["results"][0] and "conflict" not in b["results"][1]


def test_merge_keeps_a_record_host_and_accepts_missing_fields():
    a = doc("alpha", "t1", {}, [rec("c[x]", host="elsewhere")])
    b = {"results": [rec("c[x]")]}
    m = results.merge([a, b])
    assert [(r["id"], r["host"]) for r in m["results"]] == [("c[x]", "elsewhere")]
    assert m["machines"] == [{"host": "alpha", "python": "3.11.7", "created": "t1"}, {"created": None}]
    assert m["backends"] == {}


def test_merge_of_one_document_is_that_document():
    a = doc("alpha", "t1", {}, [rec("c[x]")])
    assert results.merge([a]) is a


def test_merge_of_journal_and_json_from_two_machines(tmp_path):
    w1 = results.Writer(tmp_path / "m1" / "results.json", backends={"torch": {"version": "2.13.0", "devices": ["cpu"]}})
    w1.add(rec("c[x]"))
    w2 = results.Writer(tmp_path / "m2" / "results.json", backends={"torch": {"version": "2.13.0", "devices": ["gpu"]}})
    w2.add(rec("c[x]", "error", message="boom"))
    w2.close()
    m = results.merge([results.load(tmp_path / "m1" / "results.jsonl"), results.load(tmp_path / "m2" / "results.json")])
    w1.close()
    assert m["backends"]["torch"]["devices"] == ["cpu", "gpu"]
    assert len(m["machines"]) == 2
    assert [(r["status"], r["conflict"]) for r in m["results"]] == [
        ("match", f"different outcomes across runs ({socket.gethostname()}: match, {socket.gethostname()}: error)"),
        ("error", f"different outcomes across runs ({socket.gethostname()}: match, {socket.gethostname()}: error)"),
    ]


def test_case_fields_are_written_once_per_case_and_loaded_back_into_every_record(tmp_path):
    out = tmp_path / "results.json"
    w = results.Writer(out, planned=3)
    info = {"title": "T", "tags": ["a"], "path": "cases/x.yaml:3", "source_api": "torch.nn.utils.clip_grad_norm_"}
    base = dict(info, case="c1")
    w.add(dict(rec("c1[x]"), **base, case_info=info))
    w.add(dict(rec("c1[y]"), **base))
    w.add(dict(rec("c1[z]"), **dict(base, title="another")))  # differs from the case's: kept
    mid = results.load(out.with_suffix(".jsonl"))
    doc = w.close()
    on_disk = out.read_text()
    assert on_disk.count('"cases/x.yaml:3"') == 1 and on_disk.count('"T"') == 1  # once, in cases
    for d in (mid, results.load(out)):
        assert [(r["title"], r["tags"], r["path"], r["source_api"]) for r in d["results"]] == [
            ("T", ["a"], "cases/x.yaml:3", "torch.nn.utils.clip_grad_norm_")] * 2 + [
            ("another", ["a"], "cases/x.yaml:3", "torch.nn.utils.clip_grad_norm_")]
    assert doc["results"][0]["title"] == "T"  # the run's own document keeps whole records
