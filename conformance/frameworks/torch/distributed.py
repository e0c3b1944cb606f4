"""torch's distributed clipping (worker side only; docs/distributed.md): a cell's clipping call
made on every rank of a real gloo process group on CPU, each rank holding its shard.

The ranks are a :class:`~conformance.frameworks.ranks.RankGroup` running ``rank_main``:
``init_process_group("gloo")`` through a file store and a 1-d CPU ``DeviceMesh``. ``strategy:
sharded`` makes every split parameter and gradient a DTensor ``Shard(dim)`` (``distribute_tensor``,
the layout FSDP2 leaves); ``replicated`` gives every rank the whole gradients as plain tensors
(what DDP leaves after its all-reduce). A model job differentiates each rank's chunk of the
batch through DDP or ``fully_shard`` first. ``ranks.py`` says what a raise, a hang or a dead
rank gives.
"""

from __future__ import annotations

import datetime
import os

import numpy as np
import torch

from .. import ranks
from . import clipping, nets
from .tensors import DTYPES, numpy, tensor, tensor_args

#: seconds a gloo collective waits for its peers (gloo's default is 30 minutes): longer than a
#: cell's limit (ranks.CELL_LIMIT), so a hang is always the parent's timeout, never a rank's
#: exception that would read as the API raising; it only bounds ranks orphaned by a killed worker
COLLECTIVE_TIMEOUT = 120

#: what the ranks' forkserver imports once (``ranks._context``): a group then starts in a fork
#: instead of an interpreter that imports torch per rank. ``torch._dynamo``: a rank's first
#: clipping call imports it (and 200-odd modules with it) lazily, 0.6 s of CPU in every forked
#: rank, and a group is forked again after every raise (measured in one rank: the first job 0.61 s
#: CPU without it in the preload, 0.01 s with it)
PRELOAD = ("torch", "torch.distributed", "torch.distributed.device_mesh", "torch.distributed.tensor",
           "torch.distributed.fsdp", "torch.nn.parallel", "torch._dynamo", __name__)

#: the distributed API -> the clipping call every rank makes
APIS = {"torch.nn.utils.clip_grad_norm_.distributed": clipping.APIS["torch.nn.utils.clip_grad_norm_"]}


def run(job: dict) -> dict:
    if job["device"] != "cpu":
        raise NotImplementedError("distributed cells run on CPU (gloo) only")
    return ranks.run(rank_main, job, preload=PRELOAD)


# --- in the rank processes ----------------------------------------------------------------------

def rank_main(rank: int, world_size: int, scratch: str, conn) -> None:
    """One rank (``ranks.py`` says the protocol): join the gloo group, answer jobs until the
    worker is gone."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    torch.set_num_threads(1)  # as the worker: the same arithmetic on every machine
    dist.init_process_group("gloo", init_method=f"file://{os.path.join(scratch, 'store')}", rank=rank,
                            world_size=world_size, timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT))
    mesh = init_device_mesh("cpu", (world_size,))
    ranks.serve(conn, lambda job: _run_on_rank(job, mesh))


def _run_on_rank(job: dict, mesh) -> dict:
    """This rank's parameters (its shards), the call, and what it holds afterwards."""
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    def local(t):
        return t.to_local() if isinstance(t, DTensor) else t

    d = job["distributed"]
    split = d["split"] if d["strategy"] == "sharded" else {}
    named = _model_params(job, mesh, dist) if "model" in job else _injected_params(job, mesh, split)
    raw = {n: numpy(local(p.grad)) for n, p in named} if "model" in job else None
    offsets = _offsets(named, split, dist)
    params = [p for _, p in named]
    out = {"offsets": offsets, "raw_grads": raw, "returned": None, "raised": None}
    try:
        returned = APIS[job["api"]](params, tensor_args(job["args"], "cpu"))
        if isinstance(returned, DTensor):
            returned = returned.full_tensor()  # a Partial(max) norm is reduced only when read
        if isinstance(returned, torch.Tensor):
            out["returned"] = float(returned.detach().to(torch.float64))
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        out["raised"] = {"type": type(e).__name__, "message": str(e)}
    out["grads"] = {n: numpy(local(p.grad)) for n, p in named}
    return out


def _injected_params(job: dict, mesh, split: dict) -> list:
    """Injected gradients: the split ones as DTensors ``Shard(dim)`` (``distribute_tensor``
    scatters rank 0's whole tensor), the others whole on every rank; none on the ranks the
    job's ``no_grad_on`` names."""
    from torch.distributed.tensor import Shard, distribute_tensor

    import torch.distributed as dist

    dtype, named = DTYPES[job["dtype"]], []
    absent = {n for n, ranks in (job["distributed"].get("no_grad_on") or {}).items() if dist.get_rank() in ranks}
    for p in job["params"]:
        pdtype = DTYPES[p["dtype"]] if "dtype" in p else dtype  # mixed dtypes
        param = torch.zeros(p["shape"], dtype=pdtype)
        grad = None if p["grad"] is None else tensor(p["grad"], pdtype, "cpu")
        if p["name"] in split:
            placement = [Shard(split[p["name"]])]
            param = distribute_tensor(param, mesh, placement)
            grad = None if grad is None else distribute_tensor(grad, mesh, placement)
        param = torch.nn.Parameter(param)
        param.grad = None if p["name"] in absent else grad  # distribute_tensor ran on every rank: its scatter
        named.append((p["name"], param))
    return named


def _model_params(job: dict, mesh, dist) -> list:
    """A model: every rank builds the case's network and differentiates its equal contiguous
    chunk of the batch, through ``DistributedDataParallel`` (replicated: the gradients are
    all-reduced and averaged) or ``fully_shard`` on each weighted layer and the whole network
    (sharded, FSDP2: reduce-scattered and averaged, left as DTensors ``Shard(0)``)."""
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel

    model, dtype = job["model"], DTYPES[job["dtype"]]
    net = nets.network(model, dtype, "cpu")
    rank, world = dist.get_rank(), dist.get_world_size()

    def chunk(a):
        return None if a is None else np.array_split(np.asarray(a), world)[rank]

    if job["distributed"]["strategy"] == "sharded":
        for layer in net.children():
            if any(True for _ in layer.parameters()):
                fully_shard(layer, mesh=mesh)
        wrapped = fully_shard(net, mesh=mesh)
    else:
        wrapped = DistributedDataParallel(net)
    x, y = chunk(model["inputs"]), chunk(model.get("targets"))
    out = wrapped(tensor(x, dtype, "cpu"))
    nets.loss(model["loss"], out, None if y is None else tensor(y, dtype, "cpu")).backward()
    return list(net.named_parameters())


def _offsets(named: list, split: dict, dist) -> dict:
    """``{name: the first row this rank holds along its split dim}``, from every rank's shard
    lengths (one all_gather): what the rank holds, whatever rule cut it."""
    if not split:
        return {}
    lengths = {n: p.to_local().shape[split[n]] for n, p in named if n in split}
    every = [None] * dist.get_world_size()
    dist.all_gather_object(every, lengths)
    rank = dist.get_rank()
    return {n: int(sum(every[r][n] for r in range(rank))) for n in lengths}
