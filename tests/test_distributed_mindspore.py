"""MindSpore's distributed clipping on a real MindSpore cluster on CPU (issue 15,
docs/distributed.md), where MindSpore is installed: the scheduler rank 0 starts, sharded
parameters refused with MindSpore's own message while the group stays up, data parallelism's
averaged gradients, and the scheduler gone with its ranks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conformance.frameworks import ranks
from conftest import distributed_cell

pytestmark = pytest.mark.framework  # runs in the framework envs (tests/framework_mark.py)

pytest.importorskip("mindspore")
from conformance.frameworks.mindspore import distributed  # noqa: E402  (after the skip: imports mindspore)

API = "mindspore.ops.clip_by_global_norm.distributed"


@pytest.fixture(autouse=True, scope="module")
def _close_rank_groups():
    yield
    ranks.close_all()


def _prepared(case: str, *parts: str):
    return distributed_cell("mindspore", case, *parts)


def _my_schedulers() -> set:
    """The pids of the MindSpore scheduler processes that descend from this test process (their
    command line): another run on the machine (a `make report` beside CI) has its own, which
    failed this test when every scheduler counted."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    procs = [(int(f[0]), int(f[1]), f[2] if len(f) > 2 else "")
             for f in (line.split(None, 2) for line in out.splitlines() if line.strip())]
    children: dict = {}
    for pid, ppid, _ in procs:
        children.setdefault(ppid, []).append(pid)
    mine, todo = set(), [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), ()):
            mine.add(child)
            todo.append(child)
    return {pid for pid, _, args in procs if pid in mine and distributed.SCHEDULER[:40] in args}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def test_sharded_parameters_are_refused_on_cpu_and_the_group_is_kept():
    cell, prepared = _prepared("dist-sharded-norm-types", "float32", "norm_type=2.0")
    out = distributed.run(prepared.job)
    assert out["raised"]["type"] == "RuntimeError"
    assert out["raised"]["message"].startswith(
        "rank 0: setting up the shards: Invalid communication backend: CPU for semi_auto_parallel/auto_parallel mode")
    assert all(r.get("in_step") for r in out["ranks"])
    group = ranks.group(distributed.rank_main, 2)
    assert group is not None  # every rank raised in step: no restart
    replicated = _prepared("dist-replicated", "norm_type=2.0")[1]
    after = distributed.run(replicated.job)
    assert after["raised"] is None and ranks.group(distributed.rank_main, 2) is group


def test_data_parallel_averages_the_ranks_gradients():
    """A mean loss over equal chunks: the reduced gradients are the whole batch's (float64);
    a summed loss: the whole batch's divided by the world size."""
    for case, divisor in (("dist-model-mlp-mean-ddp", 1.0), ("dist-model-ce-sum-ddp", 2.0)):
        cell, prepared = _prepared(case, "float", "norm_type=2.0")
        out = distributed.run(prepared.job)
        assert out["raised"] is None
        want = prepared.hooks.oracle(None).before
        for rank in out["ranks"]:
            for name, w in zip(rank["raw_grads"], want):  # (both in the network's parameter order)
                np.testing.assert_allclose(rank["raw_grads"][name], w / divisor,
                                           rtol=1e-5 if cell.dtype == "float32" else 1e-12, atol=1e-7)


def test_the_scheduler_goes_with_its_ranks():
    cell, prepared = _prepared("dist-replicated", "norm_type=2.0")
    assert distributed.run(prepared.job)["raised"] is None
    started = _my_schedulers()
    assert started, "rank 0 started no scheduler"
    group = ranks.group(distributed.rank_main, 2)
    os.kill(group.procs[0].pid, signal.SIGKILL)  # the scheduler dies with rank 0, however it dies
    group.procs[0].join(10)
    ranks.close_all()
    deadline = time.monotonic() + 10
    while any(map(_alive, started)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_alive, started)), started


def test_the_snippet_runs_under_msrun_and_prints_every_rank(tmp_path):
    """The replicated snippet as its header says to run it: msrun, two workers on CPU; each
    rank's clipped gradients are the oracle's (no epsilon, ms-distributed-global-norm-no-eps)."""
    replicated = _prepared("dist-replicated", "norm_type=2.0")[1]
    script = tmp_path / "repro.py"
    script.write_text(replicated.snippet())
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    # a free scheduler port: msrun's default, 8118, is where MindSpore's ranks bind their own
    # servers, so the suite's rank groups (kept for a worker's life: another xdist worker's, or
    # a `make report` beside this run) held it, and msrun's scheduler then waited until the
    # timeout (seen in a fresh-clone `.ci/run` beside a `make report`: 240 s, 3.5 s of CPU)
    out = subprocess.run([os.path.join(bin_dir, "msrun"), "--worker_num=2", "--local_worker_num=2", "--join=True",
                          f"--master_port={ranks.free_port()}", str(script)],
                         capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    want = replicated.hooks.oracle({"threshold": "max_div", "eps": 0.0, "nonfinite": "skip_nan"})
    for r in (0, 1):
        log = (tmp_path / f"worker_{r}.log").read_text()
        line = next(ln for ln in log.splitlines() if ln.startswith(f"rank {r}: a "))
        got = np.array(eval_free_list(line.split(" ", 3)[3]))
        np.testing.assert_allclose(got, want.grads[0], rtol=1.3e-6, atol=1e-5)


def eval_free_list(text: str) -> list:
    """A printed nested list of floats (``nan`` included), parsed without eval."""
    import json
    return json.loads(text.replace("nan", "NaN"))
