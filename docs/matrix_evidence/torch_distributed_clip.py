"""torch.nn.utils.clip_grad_norm_ across two real processes (CPU, gloo, no mocks) against the same
call in one process (issue 15's first measurements, docs/distributed.md):

1. gradients sharded as DTensors along dim 0 (the layout FSDP2 leaves), injected: plain, a NaN on
   one rank, an inf on the other, an empty shard;
2. a real data-parallel backward through DistributedDataParallel and through fully_shard (FSDP2)
   of a Linear(3, 4) -> tanh -> Linear(4, 2) network, the batch of 4 rows split 2 and 2, each
   rank's mean squared error (the ranks' averaged gradients are the one-process gradients of the
   whole batch's mean).

    .tox/torch/bin/python docs/matrix_evidence/torch_distributed_clip.py

Each measurement is its own pair of processes with a 20 s collective timeout and a 60 s limit on
the pair: a rank that raises while its peer waits in a collective is a hang, printed as such, and
the next measurement still runs.
"""

from __future__ import annotations

import datetime
import math
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2
NORMS = (2.0, 1.0, math.inf, -math.inf, 0.0, 0.5)


def grads(scenario: str) -> list:
    """The whole gradients of a scenario (float32); sharded along dim 0 over the ranks."""
    a = torch.arange(12, dtype=torch.float32).reshape(4, 3) - 5.0
    b = torch.tensor([[3.0, 4.0, 5.0], [-6.0, 7.0, 8.0]])
    if scenario == "nan-on-rank-0":
        a[0, 1] = float("nan")  # rows 0-1 are rank 0's shard
    if scenario == "inf-on-rank-1":
        b[1, 2] = float("inf")  # row 1 is rank 1's shard
    if scenario == "empty-shard":
        b = b[:1]  # one row over two ranks: rank 1's shard is empty
    return [a, b]


def single(scenario: str, norm_type: float):
    """The whole gradients clipped in one process: (total norm, clipped gradients) or the error."""
    ps = []
    for g in grads(scenario):
        p = torch.nn.Parameter(torch.zeros_like(g))
        p.grad = g.clone()
        ps.append(p)
    try:
        total = torch.nn.utils.clip_grad_norm_(ps, 1.0, norm_type=norm_type)
    except Exception as e:  # noqa: BLE001 - the behaviour compared
        return f"raises {type(e).__name__}: {e}", None
    return float(total), [p.grad for p in ps]


def sharded_rank(rank: int, scenario: str, port: int, norm_type: float, queue) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=datetime.timedelta(seconds=20))
    mesh = init_device_mesh("cpu", (WORLD,))
    ps = []
    for g in grads(scenario):
        p = torch.nn.Parameter(distribute_tensor(torch.zeros_like(g), mesh, [Shard(0)]))
        p.grad = distribute_tensor(g, mesh, [Shard(0)])
        ps.append(p)
    try:
        total = torch.nn.utils.clip_grad_norm_(ps, 1.0, norm_type=norm_type)
        # plain lists: a tensor put on the queue is shared memory that dies with this process
        out = (float(total.full_tensor()), [p.grad.full_tensor().tolist() for p in ps])
    except Exception as e:  # noqa: BLE001
        out = (f"raises {type(e).__name__}: {str(e).splitlines()[0][:90]}", None)
    queue.put((rank, out))
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(target, args: tuple) -> dict:
    """``{rank: what target(rank, *args[:1], port, *args[1:], queue) put on the queue}`` for the
    ranks that answered within 60 s."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=target, args=(r, args[0], port, *args[1:], queue)) for r in range(WORLD)]
    for p in procs:
        p.start()
    got = {}
    for _ in range(WORLD):
        try:
            rank, out = queue.get(timeout=60)
            got[rank] = out
        except Exception:  # noqa: BLE001 - queue.Empty: a rank hung
            break
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
    return got


def same(a, b) -> bool:
    return torch.allclose(a, b, rtol=1.3e-6, atol=1e-5, equal_nan=True)


def sharded_main() -> None:
    print(f"torch {torch.__version__}, world size {WORLD}, gloo on CPU, gradients sharded Shard(0)")
    for scenario in ("plain", "nan-on-rank-0", "inf-on-rank-1", "empty-shard"):
        for norm_type in NORMS:
            want_norm, want = single(scenario, norm_type)
            got = spawn(sharded_rank, (scenario, norm_type))
            cells = []
            for r in range(WORLD):
                if r not in got:
                    cells.append(f"rank {r}: no answer in 60 s (hung)")
                    continue
                norm, clipped = got[r]
                if clipped is None or want is None:
                    cells.append(f"rank {r}: {norm}")
                    continue
                ok = (math.isclose(norm, want_norm, rel_tol=1.3e-6) or (math.isnan(norm) and math.isnan(want_norm))
                      or norm == want_norm) and all(same(torch.tensor(c), w) for c, w in zip(clipped, want))
                cells.append(f"rank {r}: total {norm:.7g} {'same' if ok else 'DIFFERS'}")
            wn = want_norm if isinstance(want_norm, str) else f"{want_norm:.7g}"
            print(f"{scenario:14} p={norm_type:<5} one process: {wn}; " + "; ".join(cells), flush=True)



MODEL_NORMS = (2.0, 1.0, math.inf, 0.5)


def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def batch():
    x = torch.linspace(-2.0, 2.0, 12).reshape(4, 3)
    y = torch.tensor([[1.0, -1.0], [0.5, 2.0], [-3.0, 0.0], [4.0, 1.0]])
    return x, y


def model_single(norm_type: float):
    net = network()
    x, y = batch()
    torch.nn.functional.mse_loss(net(x), y).backward()
    total = torch.nn.utils.clip_grad_norm_(net.parameters(), 0.1, norm_type=norm_type)
    return float(total), [p.grad.tolist() for p in net.parameters()]


def model_rank(rank: int, strategy: str, port: int, norm_type: float, queue) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=datetime.timedelta(seconds=20))
    net = network()
    if strategy == "ddp":
        model = torch.nn.parallel.DistributedDataParallel(net)
    else:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh("cpu", (WORLD,))
        for layer in (net[0], net[2]):
            fully_shard(layer, mesh=mesh)
        model = fully_shard(net, mesh=mesh)
    x, y = batch()
    half = slice(2 * rank, 2 * rank + 2)
    torch.nn.functional.mse_loss(model(x[half]), y[half]).backward()
    try:
        total = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1, norm_type=norm_type)
        full = total.full_tensor() if hasattr(total, "full_tensor") else total
        grads = [(p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad).tolist()
                 for p in model.parameters()]
        out = (float(full), grads, type(next(model.parameters()).grad).__name__)
    except Exception as e:  # noqa: BLE001 - the behaviour compared
        out = (f"raises {type(e).__name__}: {str(e).splitlines()[0][:90]}", None, None)
    queue.put((rank, out))
    dist.destroy_process_group()


def model_main() -> None:
    print(f"torch {torch.__version__}, world size {WORLD}, gloo on CPU, max_norm 0.1")
    for strategy in ("ddp", "fsdp2"):
        for norm_type in MODEL_NORMS:
            want_norm, want = model_single(norm_type)
            got = spawn(model_rank, (strategy, norm_type))
            cells = []
            for r in range(WORLD):
                if r not in got:
                    cells.append(f"rank {r}: no answer in 60 s (hung)")
                    continue
                norm, grads, gtype = got[r]
                if grads is None:
                    cells.append(f"rank {r}: {norm}")
                    continue
                worst = max(float((torch.tensor(g) - torch.tensor(w)).abs().max() / (torch.tensor(w).abs().max() + 1e-30))
                            for g, w in zip(grads, want))
                ok = math.isclose(norm, want_norm, rel_tol=1e-5) and worst <= 1e-5
                cells.append(f"rank {r}: total {norm:.7g} ({gtype} grads, worst rel. diff {worst:.1e}) "
                             f"{'same' if ok else 'DIFFERS'}")
            print(f"{strategy:5} p={norm_type:<4} one process: {want_norm:.7g}; " + "; ".join(cells), flush=True)



if __name__ == "__main__":
    sharded_main()
    model_main()
