"""The distributed kind's oracle: the single-process answer over the whole gradients.

A distributed cell is a clipping call made on every rank, each holding its shard; what it must
give is what one process gives over the whole gradients (the issue's contract: each rank's
clipped shard equals the oracle's slice, and every rank returns the oracle's total norm). So a
distributed source names one of the clipping oracle's functions, with the same knobs, and this
module adds only how a whole array is cut into a rank's shard. numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

# the single-process semantics a distributed source names (its registry `oracle.fn`)
from ..clipping.oracle import (OracleResult, clip_grad_norm, clip_grad_value, clip_grads_with_norm,
                               get_total_norm, vector_norm)

__all__ = ["OracleResult", "RanksResult", "clip_grad_norm", "clip_grad_value", "get_total_norm", "averaged",
           "chunk_bounds", "clip_by_summed_shard_norms", "shard", "without_ranks"]


@dataclass
class RanksResult(OracleResult):
    """The clipping oracle's result, and ``before``: the whole gradients the ranks clip (the
    oracle's input: the case's, or ``averaged`` ones under a variant)."""

    before: Optional[list] = None


def averaged(grads: list, divisor: float) -> list:
    """The gradients every rank holds after data parallelism's averaging (DDP's all-reduce and
    FSDP2's reduce-scatter divide the ranks' sum by the world size) when each rank's loss is
    the *sum* over its chunk of the batch: ``g / world_size``, where ``g`` is the whole
    batch's gradient. (With a mean loss over equal chunks the average is ``g`` itself.)
    Knob ``grad_divisor`` of a distributed difference: ``world_size``."""
    return [None if g is None else g / divisor for g in grads]


def clip_by_summed_shard_norms(grads: list, max_norm: float, norm_type: float = 2.0,
                               error_if_nonfinite: bool = False, *, dims: list, world_size: int,
                               eps: float = 1e-6, threshold: str = "clamp", **_single) -> OracleResult:
    """Global clipping whose per-gradient norm of a sharded gradient is the *sum* of its shards'
    norms: ``n_i = sum_r ||shard_r(g_i)||_p`` over the ranks' ``chunk_bounds`` along ``dims[i]``
    (a gradient with ``dims[i]`` None: its own norm), ``total = ||(n_1, n_2, ...)||_p``, then
    every gradient scaled as ``clip_grads_with_norm(grads, max_norm, total, eps, threshold)``.
    For p = 2 the sum overstates the norm (shards [3, 0] and [0, 4]: 7, not 5); for p = 1 it is
    exact. Paddle 3.3.1's ``paddle.nn.utils.clip_grad_norm_`` on Shard DistTensors
    (``paddle.linalg.norm`` of a Shard(0) DistTensor is a ``Partial(SUM)`` of the shards' norms;
    docs/distributed.md). A non-finite total with ``error_if_nonfinite``: raises RuntimeError.
    Knob ``shard_norms: summed`` of a distributed difference; ``_single``: the source's other
    single-process knobs (scope global, nested), which this formula already is."""
    norms = []
    for g, dim in zip(grads, dims):
        if g is None:
            continue
        if dim is None:
            norms.append(vector_norm(g, norm_type))
        else:
            norms.append(math.fsum(vector_norm(shard(g, dim, o, n), norm_type)
                                   for o, n in chunk_bounds(g.shape[dim], world_size)))
    total = vector_norm(np.array(norms), norm_type) if norms else 0.0
    if error_if_nonfinite and not math.isfinite(total):
        return OracleResult(grads=None, total_norm=total, raises="RuntimeError")
    return OracleResult(grads=clip_grads_with_norm(grads, max_norm, total, eps=eps, threshold=threshold).grads,
                        total_norm=total)


def without_ranks(g: np.ndarray, dim: Optional[int], ranks: list, world_size: int) -> np.ndarray:
    """The whole gradient when ``ranks`` hold none of it: their rows along ``dim`` (their
    ``chunk_bounds``) are zeros, as a sum over the ranks' parts counts a missing part. A
    replicated gradient (``dim`` None) is every rank's whole: it stays as it is (the ranks
    without it are compared as holding ``None``)."""
    if dim is None:
        return g
    out = np.array(g, copy=True)
    bounds = chunk_bounds(g.shape[dim], world_size)
    for r in ranks:
        offset, length = bounds[r]
        index = [slice(None)] * g.ndim
        index[dim] = slice(offset, offset + length)
        out[tuple(index)] = 0.0
    return out


def chunk_bounds(n: int, world_size: int) -> list:
    """``[(offset, length)]`` per rank for ``n`` rows cut into ``world_size`` chunks of
    ``c = ceil(n / world_size)`` rows, the last ones shorter or empty (``torch.chunk``, DTensor
    ``Shard(dim)``): rank ``r`` holds rows ``[min(r c, n), min((r + 1) c, n))``.

    Only the registry's facts use this rule (which ranks hold an empty shard); a cell's
    comparison uses the offsets each rank reports, whatever rule its framework follows."""
    c = -(-n // world_size) if n else 0
    return [(min(r * c, n), max(0, min((r + 1) * c, n) - min(r * c, n))) for r in range(world_size)]


def shard(a: np.ndarray, dim: int, offset: int, length: int) -> np.ndarray:
    """Rows ``[offset, offset + length)`` of ``a`` along ``dim``: a rank's slice of the whole."""
    index = [slice(None)] * a.ndim
    index[dim] = slice(offset, offset + length)
    return a[tuple(index)]
