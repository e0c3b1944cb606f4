"""torch's distributed clipping (worker side only; docs/distributed.md): a cell's clipping call
made on every rank of a real gloo process group on CPU, each rank holding its shard.

The worker keeps one :class:`RankGroup` per world size: ``world_size`` processes started with
torch.multiprocessing (spawn), joined by ``init_process_group("gloo")`` through a file store,
each answering jobs over a pipe; a cell costs its collectives, not a start (about 10 s here).
``strategy: sharded`` makes every parameter and gradient a DTensor ``Shard(dim)`` over a 1-d
CPU mesh (``distribute_tensor``, the layout FSDP2 leaves); ``replicated`` gives every rank the
whole gradients as plain tensors (what DDP leaves after its all-reduce).

Supervision (issue 15: a hung collective is an ``error`` cell, not a hung run): a rank that
raises while its peers wait in a collective leaves them waiting, so once one rank has raised
the others get ``RAISE_GRACE`` seconds, then the whole group is killed and the cell's result is
that rank's exception (the lowest such rank: the same every run). A rank that dies, or a group
that does not answer within ``CELL_LIMIT`` seconds, is a runner error. After any of these the
group is replaced before the next cell: its collectives may be out of step.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import time
from multiprocessing.connection import wait

import numpy as np
import torch
import torch.multiprocessing as mp

from . import clipping, nets
from .tensors import DTYPES, numpy, tensor, tensor_args

#: seconds a gloo collective waits for its peers (gloo's default is 30 minutes): longer than a
#: cell's limit, so a hang is always the parent's timeout, never a rank's exception that would
#: read as the API raising; it only bounds ranks orphaned by a killed worker
COLLECTIVE_TIMEOUT = 120
#: seconds the other ranks get to answer once one rank has raised
RAISE_GRACE = 3.0
#: seconds a group has to start (each rank imports torch) and to answer one cell
START_LIMIT = 90.0
CELL_LIMIT = 45.0

#: the distributed API -> the clipping call every rank makes
APIS = {"torch.nn.utils.clip_grad_norm_.distributed": clipping.APIS["torch.nn.utils.clip_grad_norm_"]}


class RankGroup:
    """``world_size`` rank processes in one gloo group (see the module doc)."""

    def __init__(self, world_size: int):
        self.world_size = world_size
        self._dir = tempfile.mkdtemp(prefix="gloo-")
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for rank in range(world_size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_rank_main, args=(rank, world_size, os.path.join(self._dir, "store"), child),
                               daemon=True, name=f"rank-{rank}")
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        answers, pending, _ = self._collect(time.monotonic() + START_LIMIT)
        if pending or any(a != "ready" for a in answers.values()):
            self.close()
            raise RuntimeError(f"the {world_size}-rank gloo group did not start within {START_LIMIT:g} s: "
                               + _missing(answers, pending))

    def alive(self) -> bool:
        return all(p.is_alive() for p in self.procs)

    def call(self, job: dict) -> list:
        """Every rank's answer to ``job``, rank by rank; see the module doc for what raises."""
        for conn in self.conns:
            conn.send(job)
        answers, pending, raised_at = self._collect(time.monotonic() + CELL_LIMIT)
        died = {r for r, a in answers.items() if a is None}
        failed = {r: a["failed"] for r, a in answers.items() if isinstance(a, dict) and "failed" in a}
        if died or failed or pending:
            self.close()
        if died or failed:
            what = ["a rank process died: " + ", ".join(f"rank {r} (exit code {self.procs[r].exitcode})"
                                                         for r in sorted(died))] if died else []
            what += [f"rank {r} failed outside the call: {text}" for r, text in sorted(failed.items())]
            raise RuntimeError("; ".join(what))
        if pending and raised_at is None:
            raise TimeoutError(f"no answer within {CELL_LIMIT:g} s from " + _missing(answers, pending))
        for r in sorted(pending):
            answers[r] = {"pending": f"still in a collective {RAISE_GRACE:g} s after a peer raised (killed)"}
        if raised_at is not None and not pending:
            self.close()  # a rank raised: the others may have left a collective it did not enter
        return [answers[r] for r in range(self.world_size)]

    def _collect(self, deadline: float):
        """Answers until every rank answered, ``deadline``, or ``RAISE_GRACE`` after a raise:
        ``({rank: answer, None where its pipe closed}, {ranks without one}, when one raised)``."""
        answers, pending, raised_at = {}, set(range(self.world_size)), None
        while pending:
            end = deadline if raised_at is None else min(deadline, raised_at + RAISE_GRACE)
            ready = wait([self.conns[r] for r in pending], timeout=max(0.0, end - time.monotonic()))
            if not ready:
                break
            for conn in ready:
                rank = self.conns.index(conn)
                pending.discard(rank)
                try:
                    answers[rank] = conn.recv()
                except (EOFError, OSError):
                    answers[rank] = None
                    self.procs[rank].join(timeout=5)
                if isinstance(answers[rank], dict) and answers[rank].get("raised") and raised_at is None:
                    raised_at = time.monotonic()
        return answers, pending, raised_at

    def close(self) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
        for proc in self.procs:
            proc.join(timeout=10)
        for conn in self.conns:
            conn.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _missing(answers: dict, pending: set) -> str:
    return ", ".join([f"rank {r} (no answer)" for r in sorted(pending)]
                     + [f"rank {r} (pipe closed)" for r, a in sorted(answers.items()) if a is None])


_GROUPS: dict = {}  # world size -> its RankGroup, kept for the worker's life


def close_all() -> None:
    """Stop every rank group this process started (a test's; a worker's go with its process)."""
    while _GROUPS:
        _GROUPS.popitem()[1].close()


def run(job: dict) -> dict:
    d = job["distributed"]
    if job["device"] != "cpu":
        raise NotImplementedError("distributed cells run on CPU (gloo) only")
    group = _GROUPS.get(d["world_size"])
    if group is None or not group.alive():
        if group is not None:
            group.close()
        group = _GROUPS[d["world_size"]] = RankGroup(d["world_size"])
    answers = group.call(job)
    if not group.alive() or any("pending" in a or a.get("raised") for a in answers):
        _GROUPS.pop(d["world_size"], None)
    raised = next(({"type": a["raised"]["type"], "message": f"rank {r}: {a['raised']['message']}"}
                   for r, a in enumerate(answers) if a.get("raised")), None)
    ranks = [{k: a.get(k) for k in ("grads", "raw_grads", "offsets", "returned", "raised", "pending")}
             for a in answers]
    return {"ranks": ranks, "raised": raised}


# --- in the rank processes ----------------------------------------------------------------------

def _rank_main(rank: int, world_size: int, store: str, conn) -> None:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    torch.set_num_threads(1)  # as the worker: the same arithmetic on every machine
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=COLLECTIVE_TIMEOUT))
    mesh = init_device_mesh("cpu", (world_size,))
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the worker is gone
            os._exit(0)
        try:
            answer = _run_on_rank(job, mesh)
        except Exception as e:  # outside the API call (setting up shards, a peer gone): not a behaviour
            answer = {"failed": f"{type(e).__name__}: {e}"}
        conn.send(answer)


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
