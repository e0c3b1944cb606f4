"""How a distributed cell runs: the whole gradients (injected, rounded to the cell's dtype), the
source's single-process oracle over them, a worker job that the framework's ``distributed.py``
runs on ``world_size`` rank processes, and what is compared: on every rank, its clipped shard
against the oracle's slice at the offset the rank reports, and its returned norm against the
oracle's; the ranks' shards must tile each whole gradient, and every rank must return the same
total norm. Main process only: numpy, never a framework."""

from __future__ import annotations

import functools
import math
from typing import Optional

import numpy as np

from ... import compare, snippets, wire
from ...classify import Hooks
from ...spec.values import tensor_data
from ...summaries import clip_factors, summarize_inputs
from ...tensors import shape_of
from ..clipping.cell import KIND as CLIPPING, Inputs, build_inputs, oracle_call
from ..interface import Kind, Prepared
from . import oracle
from .block import split_dims


class Distributed(Kind):
    name = "distributed"
    oracle = oracle
    #: knobs this kind applies itself: ``grad_divisor`` (the ranks' gradients before the call:
    #: ``oracle.averaged``), ``shard_norms: summed`` (``oracle.clip_by_summed_shard_norms``)
    knobs = ("grad_divisor", "shard_norms")
    #: seconds a rank group has to start (each rank imports its framework and joins): measured
    #: 2-11 s on a quiet two-core machine; MindSpore's ranks took over 120 s beside a `make report`
    #: at load average 17. Paid once per group; the job carries it to conformance/frameworks/ranks.py
    start_time = 300.0
    #: the mean of the bundled distributed cells on two cores (2026-12-04): torch 444 ms (sharded)
    #: and 152 ms (models), Paddle 837 and 909 ms; a cell whose rank raises costs a new group
    cell_ms = 500.0

    def facts(self, cell) -> dict:
        """The clipping kind's facts of the whole gradients, and ``distributed.strategy``,
        ``distributed.world_size``, ``distributed.empty_shard`` (a rank's shard of some gradient
        has no rows under the ceil-chunk rule of ``oracle.chunk_bounds``), and for a model its
        ``model.loss.reduction``."""
        d = cell.case.distributed
        empty = False
        for name, dim in (split_dims(cell.case) if cell.case.grads is not None else {}).items():
            value = cell.case.grads[name]
            if value is not None:
                n = shape_of(tensor_data(value))[dim]
                empty = empty or any(length == 0 for _, length in oracle.chunk_bounds(n, d.world_size))
        model = cell.case.model
        return {**CLIPPING.facts(cell), "distributed.strategy": d.strategy,
                "distributed.world_size": d.world_size, "distributed.empty_shard": empty,
                "model.loss.reduction": None if model is None else model.loss.reduction}

    def prepare(self, runner, cell) -> Prepared:
        case = cell.case
        inputs = runner.cached(("distributed-inputs", cell.source.path, case.id, cell.dtype),
                               lambda: build_inputs(case, cell.dtype))
        source = runner.registry.apis[cell.source_api]

        d = case.distributed
        missing = d.no_grad_on or {}
        dims = split_dims(case, inputs.names)

        def call(variant: Optional[dict]) -> oracle.RanksResult:
            variant = dict(variant or {})
            grads = [oracle.without_ranks(inputs.grads[n], dims.get(n), missing[n], d.world_size)
                     if n in missing and inputs.grads[n] is not None else inputs.grads[n] for n in inputs.names]
            divisor = variant.pop("grad_divisor", None)  # this kind's knob (Distributed.knobs)
            if divisor is not None:
                grads = oracle.averaged(grads, d.world_size if divisor == "world_size" else float(divisor))
            fn = None
            if variant.pop("shard_norms", "exact") == "summed":  # this kind's knob (Distributed.knobs)
                fn = functools.partial(oracle.clip_by_summed_shard_norms, world_size=d.world_size,
                                       dims=[dims.get(n) for n in inputs.names])
            result = oracle_call(source, cell.args, grads, cell.dtype, variant, fn=fn)
            return oracle.RanksResult(result.grads, result.total_norm, result.raises, before=grads)

        def want_under(variant: Optional[dict]):
            key = ("distributed-oracle", cell.source.path, case.id, cell.variant.label(), cell.dtype,
                   cell.source_api, repr(sorted((variant or {}).items())))
            return runner.cached(key, lambda: call(variant))

        want = want_under(None)
        job = {"kind": self.name, "api": cell.api, "args": cell.call_args, "dtype": cell.dtype,
               "device": cell.device, "mode": cell.mode, **inputs.job, wire.SHARE: inputs.share,
               "distributed": {"world_size": d.world_size, "strategy": d.strategy,
                               "split": dims, "no_grad_on": missing, "start_limit": self.start_time}}
        hooks = Hooks(oracle=want_under,
                      compare=lambda result, got: self._compare(runner, cell, inputs, result, got),
                      expect=lambda got, raised: compare.check_expect(
                          case.expectations(cell.api), whole(cell, inputs, got) or {},
                          None if raised else _rank0_norm(got), raised, before=inputs.grads),
                      detail=lambda c, got, rec: self._detail(cell, inputs, want, got, rec))
        return Prepared(job, want, hooks, lambda: snippets.snippet(cell, inputs),
                        inputs=lambda: summarize_inputs(inputs, cell.dtype))

    @staticmethod
    def _compare(runner, cell, inputs: Inputs, want, got: dict) -> compare.Comparison:
        dtypes = {p["name"]: p.get("dtype", cell.dtype) for p in inputs.job.get("params", [])}
        dtypes.update({n: cell.dtype for n in inputs.names if n not in dtypes})
        rtol, atol = compare.tolerance(cell.dtype, cell.case.tolerance, [d for d in dtypes.values() if d != cell.dtype])
        norms = (runner.registry.apis[cell.api].returns == "total_norm"
                 and runner.registry.apis[cell.source_api].returns == "total_norm")
        whole_before = dict(zip(inputs.names, want.before))  # what the ranks clip, under the variant
        want_grads = dict(zip(inputs.names, want.grads)) if want.grads is not None else whole_before
        ranks = got.get("ranks") or []
        c = compare.Comparison(norm_want=want.total_norm if norms else None, rtol=rtol, atol=atol)
        world = cell.case.distributed.world_size
        if len(ranks) != world:
            c.problems.append(f"{len(ranks)} ranks answered; the world size is {world}")
        dims = split_dims(cell.case, inputs.names)
        missing = cell.case.distributed.no_grad_on or {}
        for r, rank in enumerate(ranks):
            label = f"rank {r}: "
            absent = {n for n, on in missing.items() if r in on}  # this rank has no gradient there
            before, wanted = _slices(whole_before, rank, dims, absent), _slices(want_grads, rank, dims, absent)
            if inputs.raw is not None and rank.get("raw_grads") is not None:  # a model: DDP's / FSDP2's
                raw = compare.compare_outputs(rank["raw_grads"], before, rtol, atol,  # averaged gradients
                                              label=label + "before clipping: ")
                c.params.update(raw.params)
                c.problems += raw.problems
            rc = compare.compare_outputs(rank.get("grads") or {}, wanted, rtol, atol,
                                         rank.get("returned") if norms else None,
                                         want.total_norm if norms else None, label=label, norm_dtype=cell.dtype)
            c.params.update(rc.params)
            c.problems += rc.problems
            c.problems += [label + p for p in compare.compare_factors(
                before, rank.get("grads") or {}, wanted, dtypes, rtol, got_before=rank.get("raw_grads") or before)]
        if len(ranks) == world:
            c.problems += _coverage(inputs.grads, ranks, dims)
            if norms:
                c.problems += _same_norm(ranks)
        c.norm_got = _rank0_norm(got) if norms else None
        return c

    @staticmethod
    def _detail(cell, inputs: Inputs, want, got: dict, rec: dict) -> None:
        """Rank 0's returned norm and the clipping factors of the reassembled gradients."""
        rec["total_norm"] = {"got": _rank0_norm(got), "want": want.total_norm}
        want_grads = dict(zip(inputs.names, want.grads)) if want.grads is not None else {}
        rec["factor"] = clip_factors(inputs.grads, whole(cell, inputs, got) or {}, want_grads, rec["params"])


def _rank0_norm(got: dict):
    ranks = got.get("ranks") or []
    return ranks[0].get("returned") if ranks else None


def _offset(rank: dict, name: str) -> int:
    return int((rank.get("offsets") or {}).get(name, 0))


def _slices(arrays: dict, rank: dict, dims: dict, absent=frozenset()) -> dict:
    """``arrays`` (whole gradients) cut to what ``rank`` says it holds: for a sharded gradient
    the rows ``[offset, offset + its shard's length)`` along its dim, else the whole; None for
    the gradients ``absent`` on this rank."""
    got = rank.get("grads") or {}
    out = {}
    for name, a in arrays.items():
        g = got.get(name)
        if name in absent:
            out[name] = None
        elif a is None or name not in dims or g is None or np.ndim(g) != np.ndim(a):
            out[name] = a
        else:
            out[name] = oracle.shard(a, dims[name], _offset(rank, name), np.shape(g)[dims[name]])
    return out


def _coverage(whole_grads: dict, ranks: list, dims: dict) -> list:
    """Problems where the ranks' shards of a gradient do not tile it: rows missing or held twice."""
    out = []
    for name, dim in dims.items():
        a = whole_grads.get(name)
        shards = [(r, (rank.get("grads") or {}).get(name)) for r, rank in enumerate(ranks)]
        if a is None or any(g is None or np.ndim(g) != np.ndim(a) for _, g in shards):
            continue
        spans = sorted((_offset(ranks[r], name), np.shape(g)[dim], r) for r, g in shards)
        at = 0
        for offset, length, r in spans:
            if length and offset != at:
                out.append(f"{name}: rank {r}'s shard starts at row {offset} of dim {dim}, "
                           f"but the ranks before it end at row {at}")
                break
            at = max(at, offset + length)
        else:
            if at != a.shape[dim]:
                out.append(f"{name}: the ranks' shards hold {at} of its {a.shape[dim]} rows along dim {dim}")
    return out


def _same_norm(ranks: list) -> list:
    """Every rank returns the same total norm (NaN equals NaN): the issue's contract."""
    norms = [rank.get("returned") for rank in ranks]
    key = ["nan" if isinstance(n, float) and math.isnan(n) else n for n in norms]
    if len(set(map(repr, key))) > 1:
        return ["the ranks return different total norms: " + ", ".join(f"rank {r} {n!r}" for r, n in enumerate(norms))]
    return []


def whole(cell, inputs: Inputs, got: dict) -> Optional[dict]:
    """The clipped gradients reassembled from the ranks' shards (by offset), or rank 0's whole
    gradients for a replicated cell; None when the ranks did not answer."""
    ranks = got.get("ranks") or []
    if not ranks:
        return None
    dims = split_dims(cell.case, inputs.names)
    out = {}
    for name, g in (ranks[0].get("grads") or {}).items():
        if name not in dims or g is None:
            out[name] = g
            continue
        parts = sorted(((_offset(rank, name), (rank.get("grads") or {}).get(name)) for rank in ranks),
                       key=lambda item: item[0])
        if any(p is None for _, p in parts):
            out[name] = None
            continue
        out[name] = np.concatenate([np.asarray(p) for _, p in parts], axis=dims[name])
    return out


KIND = Distributed()
