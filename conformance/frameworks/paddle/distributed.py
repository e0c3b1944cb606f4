"""Paddle's distributed clipping (worker side only; docs/distributed.md): a cell's clipping call
made on every rank of a real gloo process group on CPU, each rank holding its shard.

The ranks are a :class:`~conformance.frameworks.ranks.RankGroup` running ``rank_main``: the
environment ``paddle.distributed.spawn`` would set (``PADDLE_TRAINER_ID``,
``PADDLE_TRAINERS_NUM``, the endpoints, ``PADDLE_DISTRI_BACKEND=gloo``), the master's port
picked by rank 0 and handed to its peers through the group's scratch folder, then
``init_parallel_env()`` on ``cpu``. ``strategy: sharded`` is Paddle's auto-parallel: every
split parameter and its gradient a DistTensor ``Shard(dim)`` over a 1-d ``ProcessMesh``
(``dist.shard_tensor``), the gradient from ``(p * g).sum()`` back-propagated as in one process
(``clipping.py``); ``replicated`` gives every rank the whole gradients as plain tensors (what
``paddle.DataParallel`` leaves after its all-reduce). A model job differentiates each rank's
chunk of the batch through ``paddle.DataParallel`` (replicated), or, sharded, the whole batch
as a ``Shard(0)`` DistTensor through a network whose weighted layers' parameters are
``Shard``-ed along torch's dim 0 (auto-parallel's global view: the loss is the whole batch's).
``ranks.py`` says what a raise, a hang or a dead rank gives.
"""

from __future__ import annotations

import os

import numpy as np
import paddle

from .. import ranks
from . import nets
from .tensors import numpy, parameter, tensor, torch_layout

#: milliseconds a process group waits for its peers (``PADDLE_PG_TIMEOUT``; Paddle's default is 30
#: minutes), longer than a cell's limit (ranks.CELL_LIMIT). Paddle's gloo transport has its own
#: fixed 30 s (measured: "gloo/transport/tcp/unbound_buffer.cc:133] TIMEOUT" after 30 s), which
#: this does not change: a Paddle hang is a rank's gloo TIMEOUT raise, which no declaration
#: matches, so the cell is an ``error`` all the same
COLLECTIVE_TIMEOUT_MS = 120_000


#: what the ranks' forkserver imports once (``ranks._context``): a group then starts in a fork
#: instead of an interpreter that imports Paddle per rank
PRELOAD = ("paddle", "paddle.distributed", __name__)


def _clip_grad_norm(params: list, args: dict):
    return paddle.nn.utils.clip_grad_norm_(params, **args)


def _global_norm_on_pairs(params: list, args: dict):
    clip = paddle.nn.ClipGradByGlobalNorm(**args)
    return {id(p): g for p, g in clip([(p, p.grad) for p in params if p.grad is not None])}


#: the distributed API -> the clipping call every rank makes: returns the total norm (a Tensor)
#: or ``{id(param): clipped gradient}``
APIS = {"paddle.nn.utils.clip_grad_norm_.distributed": _clip_grad_norm,
        "paddle.nn.ClipGradByGlobalNorm.distributed": _global_norm_on_pairs}


def run(job: dict) -> dict:
    if job["device"] != "cpu":
        raise NotImplementedError("distributed cells run on CPU (gloo) only")
    return ranks.run(rank_main, job, preload=PRELOAD)


# --- in the rank processes ----------------------------------------------------------------------

def rank_main(rank: int, world_size: int, scratch: str, conn) -> None:
    """One rank (``ranks.py`` says the protocol): join the gloo group, answer jobs until the
    worker is gone."""
    import paddle.distributed as dist

    # rank 0 picks the master's port (the TCP store) and hands it on through the scratch folder
    master = ranks.from_rank_0(rank, scratch, "paddle-master", lambda: f"127.0.0.1:{ranks.free_port()}")
    os.environ.update({
        "PADDLE_TRAINER_ID": str(rank), "PADDLE_TRAINERS_NUM": str(world_size),
        "PADDLE_DISTRI_BACKEND": "gloo", "PADDLE_PG_TIMEOUT": str(COLLECTIVE_TIMEOUT_MS),
        "PADDLE_MASTER": master, "MASTER_ADDR": master.split(":")[0], "MASTER_PORT": master.split(":")[1],
        # only the master's endpoint is listened on (the TCP store); the others only name the ranks
        "PADDLE_TRAINER_ENDPOINTS": ",".join([master] + [f"127.0.0.1:{r}" for r in range(1, world_size)]),
        "PADDLE_CURRENT_ENDPOINT": master if rank == 0 else f"127.0.0.1:{rank}",
    })
    paddle.set_device("cpu")
    dist.init_parallel_env()
    mesh = dist.ProcessMesh(list(range(world_size)), dim_names=["x"])
    ranks.serve(conn, lambda job: _run_on_rank(job, mesh))


def _local(t):
    """A DistTensor's local shard (a plain tensor as it is)."""
    return t._local_value() if t is not None and t.is_dist() else t


def _run_on_rank(job: dict, mesh) -> dict:
    """This rank's parameters (its shards), the call, and what it holds afterwards."""
    import paddle.distributed as dist

    d = job["distributed"]
    split = d["split"] if d["strategy"] == "sharded" else {}
    try:
        named = _model_params(job, mesh) if "model" in job else _injected_params(job, mesh, split)
    except Exception as e:  # Paddle refusing the layout (no CPU reduce-scatter, an empty shard):
        # the distributed mode under test raised, a behaviour the registry declares or an error
        return {"raised": {"type": type(e).__name__, "message": f"setting up the shards: {e}"},
                "grads": {}, "offsets": {}, "raw_grads": None, "returned": None}
    params = [p for _, p, _ in named]
    raw = {n: torch_layout(numpy(_local(p.grad)), tr) for n, p, tr in named} if "model" in job else None
    out = {"offsets": _offsets(named, split), "raw_grads": raw, "returned": None, "raised": None}
    clipped = {}
    try:
        returned = APIS[job["api"]](params, dict(job["args"]))
        if isinstance(returned, dict):
            clipped = returned
        elif returned is not None:
            if returned.is_dist():  # a Partial norm is reduced only when resharded
                returned = dist.reshard(returned, returned.process_mesh, [dist.Replicate()])._local_value()
            out["returned"] = float(numpy(returned).reshape(-1)[0])
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        out["raised"] = {"type": type(e).__name__, "message": str(e)}
    out["grads"] = {n: torch_layout(numpy(_local(clipped.get(id(p), p.grad))), tr) for n, p, tr in named}
    return out


def _injected_params(job: dict, mesh, split: dict) -> list:
    """Injected gradients, ``(p * g).sum()`` back-propagated on zero parameters: the split ones
    DistTensors ``Shard(dim)`` (``dist.shard_tensor``: every rank passes the whole tensor and
    keeps its slice), the others whole on every rank; none on the ranks ``no_grad_on`` names."""
    import paddle.distributed as dist

    rank = dist.get_rank()
    absent = {n for n, on in (job["distributed"].get("no_grad_on") or {}).items() if rank in on}
    named, loss = [], None
    for spec in job["params"]:
        pdtype = spec.get("dtype", job["dtype"])
        p = parameter(spec["shape"], pdtype)
        placement = [dist.Shard(split[spec["name"]])] if spec["name"] in split else None
        if placement:
            p = dist.shard_tensor(p, mesh, placement)
        if spec["grad"] is not None and spec["name"] not in absent:
            g = tensor(spec["grad"], pdtype)
            g = dist.shard_tensor(g, mesh, placement) if placement else g
            g.stop_gradient = True
            term = (p * g).sum().astype("float64")
            loss = term if loss is None else loss + term
        named.append((spec["name"], p, False))
    if loss is not None:
        loss.backward()
    return named


def _model_params(job: dict, mesh) -> list:
    """A model: ``paddle.DataParallel`` over each rank's equal contiguous chunk of the batch
    (replicated: the gradients all-reduced and averaged), or auto-parallel over the whole batch
    sharded along dim 0, every weighted layer's parameters ``Shard``-ed along torch's dim 0
    (a Linear weight, ``[in, out]`` in Paddle, along its dim 1)."""
    import paddle.distributed as dist

    model, dtype = job["model"], job["dtype"]
    layers, named, owners = [], [], []
    for spec in model["layers"]:
        m, params = nets.layer(spec, dtype)
        layers.append((spec["name"], m))
        named += [(f"{spec['name']}.{suffix}", p, tr) for suffix, p, tr in params]
        owners += [(m, suffix) for suffix, _, _ in params]
    net = paddle.nn.Sequential(*layers)
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = np.asarray(model["inputs"]), model.get("targets")
    if job["distributed"]["strategy"] == "sharded":
        sharded = []
        for (m, suffix), (name, p, tr) in zip(owners, named):
            setattr(m, suffix, dist.shard_tensor(p, mesh, [dist.Shard(1 if tr else 0)]))
            sharded.append((name, getattr(m, suffix), tr))
        xs = dist.shard_tensor(tensor(x, dtype), mesh, [dist.Shard(0)])
        ys = None if y is None else dist.shard_tensor(tensor(np.asarray(y), dtype), mesh, [dist.Shard(0)])
        nets.loss(model["loss"], net(xs), ys).backward()
        return sharded
    chunk = lambda a: np.array_split(np.asarray(a), world)[rank]  # noqa: E731
    wrapped = paddle.DataParallel(net)
    ys = None if y is None else tensor(chunk(y), dtype)
    nets.loss(model["loss"], wrapped(tensor(chunk(x), dtype)), ys).backward()
    return named


def _offsets(named: list, split: dict) -> dict:
    """``{name: the first row this rank holds along its split dim}``, from every rank's shard
    lengths (one all_gather): what the rank holds, whatever rule cut it."""
    import paddle.distributed as dist

    if not split:
        return {}
    lengths = {n: list(_local(p).shape)[::-1 if tr else 1][split[n]] for n, p, tr in named if n in split}
    every = []
    dist.all_gather_object(every, lengths)
    rank = dist.get_rank()
    return {n: int(sum(every[r][n] for r in range(rank))) for n in lengths}
