"""clip_grad_norm_ after a real data-parallel backward (DDP, and FSDP2's fully_shard) against the
same network, batch and call in one process: CPU, gloo, two real processes.

    .tox/torch/bin/python docs/matrix_evidence/torch_fsdp_ddp_clip.py

A Linear(3, 4) -> tanh -> Linear(4, 2) network with fixed weights; the batch of 4 rows is split
in two, one half per rank, and the loss is each rank's mean squared error, so the ranks' averaged
gradients are the one-process gradients of the whole batch's mean (docs/distributed.md).
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
NORMS = (2.0, 1.0, math.inf, 0.5)


def network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def batch():
    x = torch.linspace(-2.0, 2.0, 12).reshape(4, 3)
    y = torch.tensor([[1.0, -1.0], [0.5, 2.0], [-3.0, 0.0], [4.0, 1.0]])
    return x, y


def single(norm_type: float):
    net = network()
    x, y = batch()
    torch.nn.functional.mse_loss(net(x), y).backward()
    total = torch.nn.utils.clip_grad_norm_(net.parameters(), 0.1, norm_type=norm_type)
    return float(total), [p.grad.tolist() for p in net.parameters()]


def rank_main(rank: int, strategy: str, port: int, norm_type: float, queue) -> None:
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(strategy: str, norm_type: float) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=rank_main, args=(r, strategy, port, norm_type, queue)) for r in range(WORLD)]
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


def main() -> None:
    print(f"torch {torch.__version__}, world size {WORLD}, gloo on CPU, max_norm 0.1")
    for strategy in ("ddp", "fsdp2"):
        for norm_type in NORMS:
            want_norm, want = single(norm_type)
            got = run(strategy, norm_type)
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
    main()
