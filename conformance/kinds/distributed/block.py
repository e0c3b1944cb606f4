"""The block of a distributed case: ``distributed:`` (world size, strategy, how each gradient is
split over the ranks) beside either injected ``grads:`` (the whole gradients: the oracle's input,
and what the ranks' shards are cut from) or a ``model:`` whose batch the ranks split in equal
contiguous chunks, each differentiating its chunk (DDP for ``replicated``, FSDP2's
``fully_shard`` for ``sharded``). Its cells are the clipping call made on every rank."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field

from ...spec.models import batch_size
from ...spec.values import ParamName, Strict, tensor_data
from ...tensors import shape_of
from ..interface import Block

#: rank processes a cell may start: these machines have two cores, and a world beyond 8 ranks
#: of one CPU job measures the scheduler, not the collective
MAX_WORLD = 8


class Distributed(Strict):
    """``world_size`` rank processes; ``strategy``: ``sharded`` (each rank holds a slice of every
    gradient along its ``split`` dimension, as FSDP2 / DTensor ``Shard(dim)`` leave them) or
    ``replicated`` (every rank holds the whole gradients, as DDP leaves them after its
    all-reduce); ``split``: parameter name -> the dimension it is sharded along (default 0);
    ``no_grad_on``: parameter name -> the ranks where it has no gradient (``None``), as when
    their part of the batch does not reach it. The oracle's whole gradient then lacks those
    ranks' rows (zeros; ``oracle.without_ranks``), and those ranks must keep ``None``."""

    world_size: Annotated[int, Field(ge=2, le=MAX_WORLD)] = 2
    strategy: Literal["sharded", "replicated"] = "sharded"
    split: Optional[dict[ParamName, Annotated[int, Field(ge=0)]]] = None
    no_grad_on: Optional[dict[ParamName, Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]]] = None


def split_dims(case, names=None) -> dict:
    """``{name: dim}`` for every gradient of a sharded case (0 where ``split`` names none; a
    model's parameters ``names``: FSDP2 shards each along dim 0); ``{}`` for a replicated one."""
    d = case.distributed
    if d.strategy != "sharded":
        return {}
    return {name: (d.split or {}).get(name, 0) for name in (case.grads if names is None else names)}


def _check(case) -> list:
    d = case.distributed
    if case.model is not None:
        batch = batch_size(case.model.inputs)
        if d.split or d.no_grad_on:
            field = "split" if d.split else "no_grad_on"
            return [(("distributed", field), f"`{field}:` is for injected `grads:` (a model's parameters are "
                                             "sharded along dim 0 by fully_shard, and get the gradients "
                                             "their backward gives)")]
        if batch is not None and batch % d.world_size:
            return [(("distributed", "world_size"), f"{d.world_size} ranks do not split the batch of {batch} "
                                                    "inputs into equal chunks")]
        return []
    out = []
    for name in d.split or {}:
        if name not in case.grads:
            out.append((("distributed", "split", name), f"no gradient {name!r} in `grads:` "
                                                         f"(given: {', '.join(case.grads)})"))
    for name, ranks in (d.no_grad_on or {}).items():
        if name not in case.grads or case.grads[name] is None:
            out.append((("distributed", "no_grad_on", name), f"no gradient {name!r} in `grads:` to leave out"))
        elif any(r >= d.world_size for r in ranks):
            out.append((("distributed", "no_grad_on", name), f"ranks {ranks} of a world of {d.world_size} "
                                                               f"(ranks 0 to {d.world_size - 1})"))
    if d.split and d.strategy != "sharded":
        out.append((("distributed", "split"), "`split:` says how a `strategy: sharded` case cuts "
                                              "its gradients; a replicated one holds them whole"))
    for name, dim in split_dims(case).items():
        value = case.grads.get(name)
        if value is None:
            continue
        ndim = len(shape_of(tensor_data(value)))
        if dim >= ndim:
            where = ("distributed", "split", name) if name in (d.split or {}) else ("grads", name)
            out.append((where, f"{name} has {ndim} dimension(s): it cannot be split along dim {dim}"
                               + (" (a 0-d gradient cannot be sharded: use `strategy: replicated`)"
                                  if ndim == 0 else "")))
    if case.clip.form == "tensor":
        out.append((("clip", "form"), "a distributed cell passes every rank's parameters as a list"))
    return out


BLOCK = Block(fields={"distributed": (Optional[Distributed], None)}, inputs=("grads", "model"),
              marks=("distributed",), check=_check)
