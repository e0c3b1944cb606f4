"""MindSpore's distributed clipping (worker side only; docs/distributed.md): a cell's clipping
call made on every rank of a real MindSpore cluster on CPU (its own CPU collectives).

The ranks are a :class:`~conformance.frameworks.ranks.RankGroup` running ``rank_main``, set up
the way ``msrun`` sets up its processes: rank 0 starts the cluster's scheduler (a process whose
``MS_ROLE`` is ``MS_SCHED``, on a free port written to the group's scratch folder; it dies with
rank 0), and every rank is a worker (``MS_ROLE=MS_WORKER``, ``MS_NODE_ID``, ``MS_WORKER_NUM``,
``MS_SCHED_HOST`` / ``MS_SCHED_PORT``) that calls ``communication.init()`` in PyNative mode on
``CPU``.

``strategy: replicated`` gives every rank the whole gradients (what data parallelism leaves);
a model job differentiates each rank's equal chunk of the batch (``mindspore.grad``) and
averages the ranks' gradients with ``nn.DistributedGradReducer(mean=True)``, MindSpore's data
parallel. ``strategy: sharded`` is MindSpore's semi-auto parallel, the mode in which a
parameter is cut across ranks: every rank compiles a ``MatMul().shard(...)`` network in that
mode first, and on CPU MindSpore refuses it ("Invalid communication backend: CPU for
semi_auto_parallel/auto_parallel mode"), which the rank reports as its raise (the same on every
rank, before any collective: ``in_step``, so the group is kept). ``ranks.py`` says what a raise,
a hang or a dead rank gives.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

import numpy as np

from .. import ranks
from . import clipping
from .tensors import DTYPES, ms, nn, numpy, ops, raised, tensor, tensor_args

#: the distributed API -> the clipping call every rank makes (a tuple of gradients in, out)
APIS = {"mindspore.ops.clip_by_global_norm.distributed": lambda grads, args: ops.clip_by_global_norm(grads, **args)}

#: the scheduler process: MindSpore's cluster needs one besides the workers (msrun starts it)
SCHEDULER = ("import mindspore as ms; from mindspore.communication import init; "
             "ms.set_device('CPU'); init()")


def run(job: dict) -> dict:
    if job["device"] != "cpu":
        raise NotImplementedError("distributed cells run on CPU only")
    return ranks.run(rank_main, job)


# --- in the rank processes ----------------------------------------------------------------------

def rank_main(rank: int, world_size: int, scratch: str, conn) -> None:
    """One rank (``ranks.py`` says the protocol): join the cluster, answer jobs until the worker
    is gone."""
    from mindspore.communication import init

    port = int(ranks.from_rank_0(rank, scratch, "mindspore-scheduler", lambda: _start_scheduler(world_size, scratch)))
    os.environ.update({"MS_ROLE": "MS_WORKER", "MS_NODE_ID": str(rank), "MS_WORKER_NUM": str(world_size),
                       "MS_SCHED_HOST": "127.0.0.1", "MS_SCHED_PORT": str(port)})
    ms.set_context(mode=ms.PYNATIVE_MODE)
    ms.set_device("CPU")
    init()
    ranks.serve(conn, lambda job: _run_on_rank(job, world_size))


def _die_with_parent() -> None:  # (in the scheduler, before exec: Linux's PR_SET_PDEATHSIG)
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _start_scheduler(world_size: int, scratch: str) -> int:
    """On rank 0: the scheduler on a free port, killed when rank 0 dies, however it dies."""
    port = ranks.free_port()
    env = dict(os.environ, MS_ROLE="MS_SCHED", MS_WORKER_NUM=str(world_size), MS_SCHED_HOST="127.0.0.1",
               MS_SCHED_PORT=str(port))
    with open(os.path.join(scratch, "scheduler.log"), "wb") as log:
        subprocess.Popen([sys.executable, "-c", SCHEDULER], env=env, stdout=log, stderr=subprocess.STDOUT,
                         preexec_fn=_die_with_parent)
    return port


def _run_on_rank(job: dict, world_size: int) -> dict:
    """This rank's gradients, the call, and what it holds afterwards."""
    from mindspore.communication import get_rank

    rank = get_rank()
    d = job["distributed"]
    out = {"offsets": {}, "raw_grads": None, "returned": None, "raised": None}
    if d["strategy"] == "sharded":
        try:
            _semi_auto_parallel(world_size)
        except Exception as e:  # MindSpore refusing the mode: a behaviour the registry declares
            return {**out, "grads": {}, "in_step": True,
                    "raised": {**raised(e), "message": f"setting up the shards: {raised(e)['message']}"}}
        raise NotImplementedError("semi-auto parallel compiled here: sharded clipping is not wired for "
                                  "MindSpore on a device that supports it")
    if "model" in job:
        names, grads = _data_parallel_grads(job, rank, world_size)
        out["raw_grads"] = {n: numpy(g) for n, g in zip(names, grads)}
    else:
        names = [p["name"] for p in job["params"]]
        absent = {n for n, on in (d.get("no_grad_on") or {}).items() if rank in on}  # none on this rank
        grads = [None if p["grad"] is None or p["name"] in absent
                 else tensor(p["grad"], DTYPES[p.get("dtype", job["dtype"])]) for p in job["params"]]
    present = [i for i, g in enumerate(grads) if g is not None]
    after = list(grads)
    try:
        clipped = APIS[job["api"]](tuple(grads[i] for i in present), tensor_args(job["args"]))
        for i, g in zip(present, clipped):
            after[i] = g
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        out["raised"] = raised(e)
    out["grads"] = {n: numpy(g) for n, g in zip(names, after)}
    return out


def _data_parallel_grads(job: dict, rank: int, world_size: int):
    """MindSpore's data parallel: this rank's equal contiguous chunk of the batch differentiated
    (``clipping``'s ``mindspore.grad`` of the network), then ``nn.DistributedGradReducer``'s
    mean over the ranks."""
    model = dict(job["model"])
    for key in ("inputs", "targets"):
        if model.get(key) is not None:
            model[key] = np.array_split(np.asarray(model[key]), world_size)[rank]
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
    try:
        triples = clipping.model_grads(model, DTYPES[job["dtype"]])
        reducer = nn.DistributedGradReducer([p for _, _, p in triples], mean=True, degree=world_size)
        reduced = reducer(tuple(g for _, g, _ in triples))
    finally:
        ms.reset_auto_parallel_context()
    return [n for n, _, _ in triples], list(reduced)


def _semi_auto_parallel(world_size: int) -> None:
    """Compile a one-MatMul network whose input is cut across the ranks (``MatMul().shard``),
    in semi-auto parallel and graph mode: what a sharded parameter needs."""
    class Sharded(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = ms.Parameter(ms.Tensor(np.ones((4, 3), np.float32)), name="w")
            self.mm = ops.MatMul().shard(((world_size, 1), (1, 1)))

        def construct(self, x):
            return self.mm(x, self.w)

    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.SEMI_AUTO_PARALLEL)
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        Sharded()(ms.Tensor(np.ones((2 * world_size, 4), np.float32)))
    finally:
        ms.reset_auto_parallel_context()
        ms.set_context(mode=ms.PYNATIVE_MODE)
