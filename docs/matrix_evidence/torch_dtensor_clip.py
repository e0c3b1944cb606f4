"""torch.nn.utils.clip_grad_norm_ on sharded (DTensor, as FSDP2 leaves them) gradients against the
same call on the whole gradients in one process: CPU, gloo, two real processes, no mocks.

Run with the torch environment's interpreter (issue 15's first measurements, docs/distributed.md):

    .tox/torch/bin/python docs/matrix_evidence/torch_dtensor_clip.py

Each scenario is its own pair of processes (torch.multiprocessing), with a 20 s collective
timeout and a 60 s limit on the pair: a rank that raises while its peer waits in a collective is a
hang, printed as such, and the next scenario still runs.
"""

from __future__ import annotations

import datetime
import math
import os
import socket
import sys

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


def rank_main(rank: int, scenario: str, port: int, norm_type: float, queue) -> None:
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


def sharded(scenario: str, norm_type: float) -> dict:
    """Every rank's (total norm, full clipped gradients), or what went wrong."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=rank_main, args=(r, scenario, port, norm_type, queue)) for r in range(WORLD)]
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


def main() -> None:
    print(f"torch {torch.__version__}, world size {WORLD}, gloo on CPU, gradients sharded Shard(0)")
    for scenario in ("plain", "nan-on-rank-0", "inf-on-rank-1", "empty-shard"):
        for norm_type in NORMS:
            want_norm, want = single(scenario, norm_type)
            got = sharded(scenario, norm_type)
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


if __name__ == "__main__":
    sys.exit(main())
