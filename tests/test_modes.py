"""The mode axis (docs/modes.md): which cells a case gets in each mode, their ids and keys, the
``mode`` fact the registry's conditions test, the eager-vs-compiled diff, and torch's compiled
calls in a real worker (compiled means compiled: a graph break raises, no graph is an error)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conformance import registry
from conformance.diff import diff, one_side
from conformance.frameworks import discover
from conformance.kinds.clipping import oracle
from conformance.plan import plan
from conformance.spec.load import parse_text

CASE = """\
id: modes-norm
title: clip_grad_norm_ in both modes
dtypes: [float32]
devices: [cpu]
grads:
  w: [[3.0, 4.0]]
clip: {api: torch.nn.utils.clip_grad_norm_, args: {max_norm: 1.0}}
"""


def _cells(text, **kw):
    p = plan(parse_text(text, "t.yaml").cases, registry.load(), **kw)
    assert not p.errors, p.errors
    return p.cells


def test_eager_is_the_default_and_keeps_the_ids_from_before_modes():
    cells = _cells(CASE, backends={"torch", "mindspore", "paddle"})
    assert {c.mode for c in cells} == {"eager"}
    assert "modes-norm[torch.nn.utils.clip_grad_norm_-float32-cpu]" in {c.id for c in cells}


def test_compiled_cells_exist_only_where_the_framework_compiles_the_kind():
    cells = _cells(CASE, backends={"torch", "mindspore", "paddle"}, mode="all")
    compiled = [c for c in cells if c.mode == "compiled"]
    # the frameworks whose folder says they compile clipping (Framework.compiled), no other
    want = {n for n in ("torch", "mindspore", "paddle") if "clipping" in discover()[n].compiled}
    assert compiled and {"torch", "mindspore"} <= want and {c.framework for c in compiled} == want
    eager = {c.id for c in cells if c.mode == "eager"}
    for c in compiled:  # the mode sits right after the device, and each has its eager twin
        assert "-cpu-compiled" in c.id and c.id.replace("-compiled", "") in eager
        assert c.facts()["mode"] == "compiled"
        assert c.kind.prepare  # a real cell of the kind
    keys = {c.id: c.__class__ for c in cells}
    assert len({c.id for c in cells}) == len(cells) == len(keys)
    only = _cells(CASE, backends={"torch"}, mode="compiled")
    assert {c.mode for c in only} == {"compiled"}


def test_a_case_may_keep_itself_eager():
    cells = _cells(CASE + "modes: [eager]\n", backends={"torch"}, mode="all")
    assert {c.mode for c in cells} == {"eager"}


def test_the_key_carries_the_mode_and_between_modes_pairs_the_twins():
    from conformance.plan import cell_key

    cells = _cells(CASE, backends={"torch"}, mode="all")
    keys = {cell_key(c) for c in cells}
    assert len(keys) == len(cells) and any("|compiled|" in k for k in keys)
    recs = [{"id": c.id, "key": cell_key(c), "backend": "torch", "mode": c.mode, "status": "match",
             "difference": None, "message": "", "max_abs_err": 0.0, "max_rel_err": 0.0} for c in cells]
    recs[-1] = {**recs[-1], "status": "mismatch"} if recs[-1]["mode"] == "compiled" else recs[-1]
    doc = {"schema": 3, "backends": {"torch": {"version": "x"}}, "results": recs}
    d = diff(one_side(doc, "torch:eager"), one_side(doc, "torch:compiled"))
    n_twins = sum(c.mode == "compiled" for c in cells)
    changed = [c for c in d.changes if c.what == "status"]
    assert d.unchanged + len(changed) == n_twins and not [c for c in d.changes if c.what.startswith("only")]
    assert len(changed) == (recs[-1]["status"] == "mismatch")


# ---- torch's compiled calls, in a real worker ----------------------------------------------------

@pytest.fixture(scope="module")
def torch_worker():
    pytest.importorskip("torch")
    from conformance import frameworks
    from conformance.worker import Worker

    w = Worker("torch", frameworks.workers()["torch"], "cpu", python=sys.executable)
    yield w
    w.close()


def _clip(worker, args, grads, mode="compiled", api="torch.nn.utils.clip_grad_norm_"):
    params = [{"name": n, "shape": list(np.shape(g)), "grad": np.asarray(g, dtype=np.float32)}
              for n, g in grads.items()]
    return worker.call({"kind": "clipping", "api": api, "args": args, "dtype": "float32", "device": "cpu",
                        "mode": mode, "params": params}, timeout=300)


@pytest.mark.framework
def test_torch_compiled_clip_grad_norm_gives_the_oracle_numbers(torch_worker):
    grads = {"w": [[3.0, 4.0]], "b": [12.0]}
    got = _clip(torch_worker, {"max_norm": 1.0, "norm_type": 2.0, "error_if_nonfinite": False,
                               "foreach": None}, grads)
    assert got["raised"] is None
    want = oracle.clip_grad_norm([np.array(g, dtype=np.float64) for g in grads.values()], 1.0)
    np.testing.assert_allclose(got["returned"], 13.0, rtol=1e-6)
    for (name, _), w in zip(grads.items(), want.grads):
        np.testing.assert_allclose(got["grads"][name], w, rtol=1e-6)
    # the second call of the same shapes runs the cached graph, with the new gradients' numbers
    again = _clip(torch_worker, {"max_norm": 1.0, "norm_type": 2.0, "error_if_nonfinite": False,
                                 "foreach": None}, {"w": [[0.3, 0.4]], "b": [1.2]})
    np.testing.assert_allclose(again["returned"], 1.3, rtol=1e-6)


@pytest.mark.framework
def test_torch_compiled_graph_break_raises_torchs_own_error(torch_worker):
    got = _clip(torch_worker, {"max_norm": 1.0, "norm_type": 2.0, "error_if_nonfinite": True, "foreach": None},
                {"w": [[3.0, 4.0]]})
    assert got["raised"]["type"] == "Unsupported" and "Data-dependent branching" in got["raised"]["message"]


@pytest.mark.framework
def test_torch_compiled_calls_stay_compiled_past_dynamos_recompile_limit(torch_worker):
    """Twelve distinct shapes: past dynamo's limit of 8 it would fall back to eager (or raise);
    the worker resets it first, so every call compiles and agrees with the oracle."""
    for n in range(1, 13):
        g = np.arange(1.0, n + 1.0)
        got = _clip(torch_worker, {"clip_value": 2.5, "foreach": None}, {"w": g}, api="torch.nn.utils.clip_grad_value_")
        assert got["raised"] is None, got["raised"]
        np.testing.assert_allclose(got["grads"]["w"], np.clip(g, -2.5, 2.5))


def test_the_report_lists_compiled_cells_that_differ_from_their_eager_twins(tmp_path):
    """The overview counts, per backend with both modes, the pairs that differ, and
    modes/<backend>.html lists them; a cell without a twin (eager only) is not a pair."""
    from conformance.plan import cell_key
    from conformance.report.render import render

    cells = _cells(CASE, backends={"torch"}, mode="all")
    recs = [{"id": c.id, "key": cell_key(c), "case": c.case.id, "backend": "torch", "mode": c.mode,
             "device": "cpu", "dtype": c.dtype, "api": c.api, "status": "match", "difference": None,
             "message": "", "max_abs_err": 0.0, "max_rel_err": 0.0} for c in cells]
    compiled = [i for i, r in enumerate(recs) if r["mode"] == "compiled"]
    recs[compiled[0]] = {**recs[compiled[0]], "status": "known", "difference": "x-<b>"}
    recs.append({**recs[0], "id": "eager-only[x]", "key": "torch|eager-only|a|b|cpu|eager|float32|"})
    doc = {"schema": 3, "backends": {"torch": {"version": "2"}}, "results": recs}
    render(doc, tmp_path, plots=False)
    index = (tmp_path / "index.html").read_text()
    assert 'href="modes/torch.html"' in index and "Compiled vs eager" in index
    page = (tmp_path / "modes" / "torch.html").read_text()
    assert recs[compiled[0]]["id"] in page and "x-&lt;b&gt;" in page  # escaped
    assert f"{len(compiled)} compiled cells paired with their eager twins; {len(compiled) - 1} the same, 1 status" in page
    assert "eager-only" not in page
