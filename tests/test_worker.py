"""conformance.wire, conformance.worker_main and conformance.worker.

The worker tests start real subprocesses running ``tests.fake_backend`` (no framework).
Set CONFORMANCE_TEST_PYTHON to another interpreter (one with numpy 1.x, say) to also run the
echo test under it.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conformance import wire
from conformance.worker import PROTOCOL, BackendError, Worker, WorkerError, WorkerPool

ROOT = Path(__file__).resolve().parents[1]  # tests.fake_backend lives in the repository
FAKE = "tests.fake_backend"


# ---- wire ------------------------------------------------------------------------------------


def roundtrip(obj):
    return wire.decode(wire.encode(obj))


def assert_same_array(got, want):
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # NaN == NaN here


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "int64", "int32", "bool",
                                   "uint8", "int8"])
def test_wire_array_dtypes(dtype):
    a = (np.arange(12).reshape(3, 4) % 5).astype(dtype)
    assert_same_array(roundtrip(a), a)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_wire_nonfinite(dtype):
    a = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-8, 65504.0], dtype=dtype)
    b = roundtrip(a)
    assert_same_array(b, a)
    assert np.signbit(b[3])
    assert roundtrip({"x": float("nan"), "y": float("-inf")})["y"] == float("-inf")


def test_wire_shapes():
    for a in [np.array(3.5), np.array(2, dtype=np.int64), np.zeros((0,)),
              np.zeros((0, 3), np.float32), np.zeros((2, 0, 4), np.float16),
              np.ones((1, 1, 1, 1)), np.array(True)]:
        assert_same_array(roundtrip(a), a)


def test_wire_layouts_and_byte_order():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert_same_array(roundtrip(a.T), a.T)  # Fortran-ordered view
    assert_same_array(roundtrip(a[:, ::2]), a[:, ::2])  # strided view
    big = np.arange(4, dtype=">f8")
    got = roundtrip(big)
    np.testing.assert_array_equal(got, big)
    assert got.dtype == np.float64 and got.dtype.isnative


def test_wire_decoded_arrays_are_writable():
    b = roundtrip(np.arange(3.0))
    b[0] = 7.0
    assert b.flags.writeable and b.flags.c_contiguous


def test_wire_nested_and_scalars():
    obj = {
        "api": "torch.nn.utils.clip_grad_norm_",
        "args": {"max_norm": np.float32(0.5), "norm_type": np.float64(2.0), "n": np.int64(3),
                 "flag": np.bool_(True), "none": None},
        "params": [{"name": "w", "shape": [2, 3], "grad": np.ones((2, 3))},
                   {"name": "b", "shape": [2], "grad": None}],
        "nested": [[1, [2, {"deep": np.arange(2, dtype=np.int32)}]], (4, 5)],
        "text": "naïve ∑ unicode",
    }
    got = roundtrip(obj)
    assert got["args"] == {"max_norm": 0.5, "norm_type": 2.0, "n": 3, "flag": True,
                           "none": None}
    assert type(got["args"]["max_norm"]) is float and type(got["args"]["n"]) is int
    assert type(got["args"]["flag"]) is bool
    assert_same_array(got["params"][0]["grad"], np.ones((2, 3)))
    assert got["params"][1]["grad"] is None
    assert_same_array(got["nested"][0][1][1]["deep"], np.arange(2, dtype=np.int32))
    assert got["nested"][1] == [4, 5]
    assert got["text"] == obj["text"]


def test_wire_arrays_travel_as_their_own_bytes_aligned():
    """Protocol 2: an array's bytes follow the JSON as they are (no base64), each at a multiple
    of ``ALIGN`` from the payload's start, and decode as views of the payload."""
    big = np.arange(250_000, dtype=np.float32)
    small = np.array([1.5, -2.0])
    payload = wire.encode({"g": big, "s": small, "n": np.float64(0.5)})
    assert big.nbytes + small.nbytes <= len(payload) < big.nbytes + small.nbytes + 3 * wire.ALIGN + 200
    got = wire.decode(payload)
    assert_same_array(got["g"], big)
    assert_same_array(got["s"], small)
    assert got["n"] == 0.5
    for a in (got["g"], got["s"]):
        assert a.ctypes.data % 16 == 0  # aligned for any dtype's loads (the bytearray is 16-aligned)


def test_wire_refuses_a_payload_whose_arrays_do_not_fit():
    good = wire.encode({"a": np.arange(4.0)})
    with pytest.raises(ValueError, match="do not fit"):
        wire.decode(good[:-8])  # the array's last element cut off
    (n,) = wire.HEADER.unpack_from(good)
    bad = good[:4] + good[4:4 + n].replace(b"32]", b"64]") + good[4 + n:]  # nbytes 32 -> 64
    with pytest.raises(ValueError, match="do not fit"):
        wire.decode(bad)
    for junk in (b"", b"\x00\x00", b"\x00\x00\x00\x09{}"):
        with pytest.raises(ValueError):
            wire.decode(junk)


def test_wire_refuses_what_it_cannot_carry():
    for bad in [np.array(["a"]), np.array([object()]), object(), {1, 2}]:
        with pytest.raises(TypeError):
            wire.encode({"x": bad})


def test_wire_frames():
    stream = io.BytesIO()
    msgs = [{"type": "hello", "a": np.arange(3.0)}, [1, 2], None, "x" * 100_000]
    for m in msgs:
        wire.write_frame(stream, m)
    data = stream.getvalue()
    assert int.from_bytes(data[:4], "big") == len(wire.encode(msgs[0]))
    stream.seek(0)
    got = [wire.read_frame(stream) for _ in msgs]
    assert_same_array(got[0]["a"], np.arange(3.0))
    assert got[1:] == msgs[1:]
    with pytest.raises(EOFError):
        wire.read_frame(stream)  # clean end
    with pytest.raises(EOFError, match="inside a frame"):
        wire.read_frame(io.BytesIO(data[:10]))  # truncated payload
    with pytest.raises(EOFError, match="inside a frame"):
        wire.read_frame(io.BytesIO(data[:2]))  # truncated header


class Trickle(io.RawIOBase):
    """A stream that returns at most 3 bytes per read, like a slow pipe."""

    def __init__(self, data):
        self._data = memoryview(data)

    def readable(self):
        return True

    def read(self, n=-1):
        chunk, self._data = self._data[:min(n, 3)], self._data[min(n, 3):]
        return bytes(chunk)


def test_wire_partial_reads():
    data = wire.frame({"a": np.arange(5.0)}) + wire.frame([1])
    stream = Trickle(data)
    assert_same_array(wire.read_frame(stream)["a"], np.arange(5.0))
    assert wire.read_frame(stream) == [1]


# ---- worker ----------------------------------------------------------------------------------


def echo_job(params, **args):
    return {"api": "fake.echo", "args": args, "dtype": "float32", "device": "cpu",
            "params": params}


def gone(pid):
    """The process no longer exists (or is a zombie that is not ours to reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def worker():
    w = Worker("fake", FAKE, "cpu", paths=[str(ROOT)])
    yield w
    w.close()


def test_hello(worker):
    hello = worker.hello
    assert hello["type"] == "hello" and hello["protocol"] == PROTOCOL == 3
    assert hello["backend"] == "fake"
    assert hello["pid"] == worker.pid
    assert hello["python"].count(".") == 2
    assert hello["executable"]
    assert hello["info"]["devices"]["cpu"] is None
    assert worker.starts == 1


def test_echo_through_worker(worker):
    params = [{"name": n, "shape": list(a.shape), "grad": a} for n, a in [
        ("f64", np.array([[1.5, np.nan], [np.inf, -np.inf]])),
        ("f32", np.arange(3, dtype=np.float32) / 3),
        ("f16", np.array([65504, 6e-8, np.nan], dtype=np.float16)),
        ("i64", np.array([3, -1], dtype=np.int64)),
        ("b", np.array([True, False])),
        ("scalar", np.array(2.0)),
        ("empty", np.zeros((0, 3), np.float32)),
    ]] + [{"name": "none", "shape": [2], "grad": None}]
    res = worker.call(echo_job(params, returned=np.float32(0.25)), timeout=10, label="c1")
    assert res["dtypes"] == {"f64": "float64", "f32": "float32", "f16": "float16",
                             "i64": "int64", "b": "bool", "scalar": "float64",
                             "empty": "float32", "none": None}
    for p in params:
        got = res["grads"][p["name"]]
        if p["grad"] is None:
            assert got is None
        else:
            assert_same_array(got, p["grad"])
    assert list(res["grads"]) == [p["name"] for p in params]  # order kept
    assert res["returned"] == 0.25
    assert worker.last_elapsed is not None and 0 <= worker.last_elapsed < 5


def test_reuse_and_overhead(worker):
    worker.start()
    pid = worker.pid
    job = echo_job([{"name": "w", "shape": [2, 3], "grad": np.ones((2, 3), np.float32)}],
                   max_norm=1.0)
    worker.call(job, timeout=10)  # warm
    n = 50
    t0 = time.perf_counter()
    for i in range(n):
        res = worker.call(job, timeout=10, label=f"c{i}")
        assert res["grads"]["w"].shape == (2, 3)
    per_call = (time.perf_counter() - t0) / n
    print(f"worker per-call overhead: {per_call * 1e3:.3f} ms")
    assert worker.pid == pid and worker.hello["pid"] == pid and worker.starts == 1
    assert worker.call({"api": "fake.pid"}, timeout=10)["pid"] == pid
    assert per_call < 0.020


def test_backend_exception_keeps_worker(worker):
    pid = worker.hello["pid"]
    with pytest.raises(BackendError) as info:
        worker.call({"api": "fake.raise"}, timeout=10, label="cell-r")
    e = info.value
    assert e.type == "ValueError" and e.message == "boom"
    assert str(e) == "ValueError: boom"
    assert "fake_backend.py" in e.traceback and "raise ValueError" in e.traceback
    assert e.label == "cell-r" and e.backend == "fake"
    assert worker.call({"api": "fake.pid"}, timeout=10)["pid"] == pid
    assert worker.starts == 1
    with pytest.raises(BackendError, match="NotImplementedError"):
        worker.call({"api": "fake.nope"}, timeout=10)
    with pytest.raises(BackendError, match="cannot be sent"):
        worker.call({"api": "fake.unencodable"}, timeout=10)
    assert worker.call({"api": "fake.pid"}, timeout=10)["pid"] == pid


def test_unencodable_job_sends_nothing(worker):
    pid = worker.hello["pid"]
    with pytest.raises(TypeError):
        worker.call({"api": "fake.echo", "x": object()}, timeout=10)
    assert worker.call({"api": "fake.pid"}, timeout=10)["pid"] == pid


def test_crash_sigkill_then_restart(worker):
    old = worker.hello["pid"]
    with pytest.raises(WorkerError) as info:
        worker.call({"api": "fake.crash"}, timeout=10, label="case-1/torch/float32/cpu")
    e = info.value
    assert e.kind == "crash"
    assert e.signal == "SIGKILL" and e.returncode == -signal.SIGKILL and e.pid == old
    text = str(e)
    assert "worker fake/cpu" in text and "died with signal SIGKILL" in text
    assert "while running cell case-1/torch/float32/cpu" in text
    assert "about to SIGKILL myself" in e.stderr_tail and "about to SIGKILL myself" in text
    assert not worker.alive and gone(old)
    res = worker.call({"api": "fake.pid"}, timeout=10)
    assert res["pid"] != old and res["pid"] == worker.pid
    assert worker.starts == 2


def test_worker_temporary_files_removed_with_its_process(worker):
    # frameworks write to the temporary directory (TensorFlow's autograph sources, MindSpore's
    # graph files) and a killed worker cleans nothing up: each process gets a directory of its
    # own, removed when the parent reaps it, whether it exited or was killed
    first = worker.call({"api": "fake.tempfile"}, timeout=10)
    assert os.path.isfile(first["path"]) and first["tmpdir"] != tempfile.gettempdir()
    with pytest.raises(WorkerError):
        worker.call({"api": "fake.crash"}, timeout=10)
    assert not os.path.exists(first["tmpdir"])
    second = worker.call({"api": "fake.tempfile"}, timeout=10)
    assert second["tmpdir"] != first["tmpdir"] and os.path.isfile(second["path"])
    worker.close()
    assert not os.path.exists(second["tmpdir"])


def test_recycled_worker_is_replaced_every_n_calls():
    # a framework whose process state grows with every cell (MindSpore compiled) declares
    # recycle_after: the pool replaces the process before the call that would exceed it
    with Worker("fake", FAKE, "cpu", paths=[str(ROOT)], recycle_after=2) as w:
        pids = [w.call({"api": "fake.pid"}, timeout=10)["pid"] for _ in range(5)]
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
        assert w.starts == 3 and w.recycles == 2 and gone(pids[0]) and gone(pids[2])
    # the same with every job sent ahead (as Runner.stream sends them): a worker due for
    # replacement gets no job ahead, so that the call after it can replace it (sent ahead, the
    # jobs kept one worker for every cell: MindSpore's compiled worker and JAX's were never
    # replaced in a run)
    jobs = [{"api": "fake.pid"} for _ in range(7)]
    with Worker("fake", FAKE, "cpu", paths=[str(ROOT)], recycle_after=3) as w:
        pids = [w.call(job, timeout=10, ahead=nxt)["pid"] for job, nxt in zip(jobs, jobs[1:] + [None])]
        assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]
        assert w.starts == 3 and w.recycles == 2
    pool = WorkerPool({"fake": FAKE}, paths=[str(ROOT)], recycle={("fake", "compiled"): 3})
    with pool:
        assert pool.get("fake", "cpu", "compiled").recycle_after == 3
        assert pool.get("fake", "cpu").recycle_after is None  # the eager lane is not recycled


def test_frameworks_declare_their_recycling():
    from conformance import frameworks
    assert frameworks.recycling()[("mindspore", "compiled")] == 1000
    assert frameworks.recycling(["mindspore@2.7"])[("mindspore@2.7", "compiled")] == 1000
    assert not any(b == "torch" for b, _ in frameworks.recycling())


def test_crash_exit_code(worker):
    worker.start()
    with pytest.raises(WorkerError) as info:
        worker.call({"api": "fake.exit"}, timeout=10, label="x")
    e = info.value
    assert e.kind == "crash" and e.returncode == 3 and e.signal is None
    assert "exited with code 3" in str(e) and "exiting with code 3" in str(e)
    assert worker.call({"api": "fake.pid"}, timeout=10)["pid"] == worker.pid
    assert worker.starts == 2


def test_crash_segfault_shows_python_stack(worker):
    with pytest.raises(WorkerError) as info:
        worker.call({"api": "fake.segv"}, timeout=10, label="x")
    e = info.value
    assert e.kind == "crash" and e.signal == "SIGSEGV"
    assert "Fatal Python error" in e.stderr_tail and "fake_backend.py" in e.stderr_tail


def test_crash_with_grandchild_holding_pipes(worker):
    t0 = time.perf_counter()
    with pytest.raises(WorkerError) as info:
        worker.call({"api": "fake.fork_crash"}, timeout=20, label="x")
    assert time.perf_counter() - t0 < 5  # not the timeout: the child's death is seen
    e = info.value
    assert e.kind == "crash" and e.signal == "SIGKILL"
    grandchild = int(e.stderr_tail.split("grandchild ")[1].split()[0])
    deadline = time.monotonic() + 5
    while not gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone(grandchild)  # killed with the worker's process group
    assert worker.call({"api": "fake.pid"}, timeout=10)["pid"] == worker.pid


def test_timeout_kills_and_restarts(worker):
    old = worker.hello["pid"]
    t0 = time.perf_counter()
    with pytest.raises(WorkerError) as info:
        worker.call({"api": "fake.hang"}, timeout=1, label="slow-cell")
    took = time.perf_counter() - t0
    assert 1.0 <= took < 2.5
    e = info.value
    assert e.kind == "timeout"
    assert "timed out after 1 s while running cell slow-cell" in str(e)
    assert "fake_backend.py" in e.stderr_tail  # faulthandler's stack dump: where it hung
    assert gone(old)
    assert worker.call({"api": "fake.pid"}, timeout=10)["pid"] != old
    assert worker.starts == 2


def test_junk_output_does_not_corrupt_protocol(worker):
    params = [{"name": "w", "shape": [2], "grad": np.array([1.0, 2.0])}]
    res = worker.call({"api": "fake.print", "params": params}, timeout=10)
    assert_same_array(res["grads"]["w"], np.array([1.0, 2.0]))
    res = worker.call(echo_job(params), timeout=10)
    assert_same_array(res["grads"]["w"], np.array([1.0, 2.0]))
    tail = worker.stderr_tail()
    for junk in ["junk on sys.stdout", "junk straight to fd 1", "junk on stderr",
                 "junk straight to fd 2"]:
        assert junk in tail
    assert worker.starts == 1


def test_stderr_tail_is_bounded(worker):
    worker.call({"api": "fake.stderr", "args": {"text": "x" * 10_000 + "END\n"}}, timeout=10)
    with pytest.raises(WorkerError) as info:
        worker.call({"api": "fake.crash"}, timeout=10)
    tail = info.value.stderr_tail
    assert len(tail) <= 3000 and "about to SIGKILL myself" in tail and "END" in tail


def test_import_failure_is_startup_error():
    w = Worker("fake", FAKE, "cpu", paths=[str(ROOT)], env={"FAKE_BACKEND_IMPORT_ERROR": "1"})
    with pytest.raises(WorkerError) as info:
        w.call({"api": "fake.pid"}, timeout=10)
    e = info.value
    assert e.kind == "startup" and e.returncode == 1
    assert "ImportError" in str(e) and "import refused" in str(e)
    assert "Traceback" in e.stderr_tail
    # remembered: no second launch
    t0 = time.perf_counter()
    with pytest.raises(WorkerError) as again:
        w.call({"api": "fake.pid"}, timeout=10)
    assert again.value is e and w.starts == 1 and time.perf_counter() - t0 < 0.1
    with pytest.raises(WorkerError):
        w.hello
    w.env.pop("FAKE_BACKEND_IMPORT_ERROR")
    w.reset()
    assert w.call({"api": "fake.pid"}, timeout=10)["pid"] == w.pid and w.starts == 2
    w.close()


@pytest.mark.parametrize("module,env,text", [
    ("tests.no_such_backend", {}, "ModuleNotFoundError"),
    (FAKE, {"FAKE_BACKEND_INFO_ERROR": "1"}, "RuntimeError: fake_backend: info refused"),
])
def test_other_startup_failures(module, env, text):
    w = Worker("fake", module, "cpu", paths=[str(ROOT)], env=env)
    with pytest.raises(WorkerError) as info:
        w.start()
    assert info.value.kind == "startup" and text in str(info.value)
    w.close()


def test_missing_interpreter_is_startup_error():
    w = Worker("fake", FAKE, "cpu", paths=[str(ROOT)], python="/nonexistent/python3")
    with pytest.raises(WorkerError) as info:
        w.call({"api": "fake.pid"}, timeout=10)
    assert info.value.kind == "startup" and "/nonexistent/python3" in str(info.value)


def test_startup_timeout():
    w = Worker("fake", FAKE, "cpu", paths=[str(ROOT)], startup_timeout=0.001)
    with pytest.raises(WorkerError) as info:
        w.start()
    assert info.value.kind == "startup" and "did not say hello" in str(info.value)
    assert gone(info.value.pid)


def test_close_and_context_manager():
    with Worker("fake", FAKE, "cpu", paths=[str(ROOT)]) as w:
        pid = w.hello["pid"]
    assert not w.alive and gone(pid)
    w.close()  # idempotent
    assert w.call({"api": "fake.pid"}, timeout=10)["pid"] != pid  # restarts after close
    w.close()


def test_pool_reuses_and_closes():
    pool = WorkerPool({"fake": FAKE}, paths=[str(ROOT)])
    try:
        w = pool.get("fake", "cpu")
        assert pool.get("fake", "cpu") is w
        assert pool.hello("fake", "cpu")["info"]["devices"]["cpu"] is None
        gpu = pool.hello("fake", "gpu")
        assert "gpu" in gpu["info"]["devices"]["gpu"]
        assert pool.get("fake", "gpu") is not w
        # a lane is a worker of its own (the runner's compiled cells): another process
        lane = pool.get("fake", "cpu", "compiled")
        assert lane is not w and pool.get("fake", "cpu", "compiled") is lane
        assert lane.call({"api": "fake.pid"}, timeout=10)["pid"] != w.call({"api": "fake.pid"}, timeout=10)["pid"]
        with pytest.raises(KeyError, match="no worker module"):
            pool.get("jax", "cpu")
        pids = {}
        errors = []

        def drive(device):
            try:
                for _ in range(30):
                    pids.setdefault(device, set()).add(
                        pool.call("fake", device, {"api": "fake.pid"}, timeout=10)["pid"])
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=drive, args=(d,)) for d in ("cpu", "gpu")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        all_pids = [w.pid for w in pool.workers]
        assert len(set(all_pids)) == 3  # cpu, gpu and the cpu lane
        assert all(len(s) == 1 for s in pids.values())
        assert all(w.starts == 1 for w in pool.workers)
    finally:
        pool.close()
    assert all(gone(pid) for pid in all_pids)
    assert not pool.workers


@pytest.mark.framework
@pytest.mark.skipif(not os.path.exists(os.environ.get("CONFORMANCE_TEST_PYTHON", "")),
                    reason="set CONFORMANCE_TEST_PYTHON to another interpreter with numpy "
                           "(tox's mindspore env points it at the torch env: numpy 1 <-> 2)")
def test_other_interpreter():
    python = os.environ["CONFORMANCE_TEST_PYTHON"]
    with Worker("fake", FAKE, "cpu", paths=[str(ROOT)], python=python) as w:
        assert w.hello["executable"] != sys.executable or python == sys.executable
        params = [{"name": "h", "shape": [3], "grad": np.array([1, np.nan, 2], np.float16)},
                  {"name": "i", "shape": [2], "grad": np.array([5, 6], np.int64)}]
        res = w.call(echo_job(params, returned=1.5), timeout=30)
        assert_same_array(res["grads"]["h"], params[0]["grad"])
        assert_same_array(res["grads"]["i"], params[1]["grad"])
        print("other interpreter:", w.hello["python"], w.hello["info"]["numpy"])


def test_without_pidfd(monkeypatch):
    """Where os.pidfd_open is missing (macOS, old kernels) deaths are still seen."""
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    with Worker("fake", FAKE, "cpu", paths=[str(ROOT)]) as w:
        assert w.call({"api": "fake.pid"}, timeout=10)["pid"] == w.pid
        assert w._pidfd is None
        with pytest.raises(WorkerError) as info:
            w.call({"api": "fake.exit"}, timeout=10)
        assert info.value.kind == "crash" and info.value.returncode == 3
        t0 = time.perf_counter()
        with pytest.raises(WorkerError) as info:
            w.call({"api": "fake.fork_crash"}, timeout=20)
        assert info.value.kind == "crash" and time.perf_counter() - t0 < 5
        assert info.value.signal == "SIGKILL"
        assert w.call({"api": "fake.pid"}, timeout=10)["pid"] == w.pid and w.starts == 3


def test_errors_pickle():
    import pickle

    e = WorkerError("crash", "worker x died", "tail", backend="fake", device="cpu",
                    label="c", returncode=-9, pid=12)
    f = pickle.loads(pickle.dumps(e))
    assert (f.kind, f.message, f.stderr_tail, f.signal, f.pid, str(f)) == \
        ("crash", "worker x died", "tail", "SIGKILL", 12, str(e))
    b = pickle.loads(pickle.dumps(BackendError("ValueError", "boom", "tb", label="c")))
    assert (b.type, b.message, b.traceback, b.label, str(b)) == \
        ("ValueError", "boom", "tb", "c", "ValueError: boom")


def test_a_job_sent_ahead_runs_behind_the_call_and_goes_with_a_dead_child(worker):
    """``call(job, ahead=next)``: ``next`` is in the child's pipe before this call's answer is
    read, and the next call for that same job only reads its answer. A child that dies takes the
    job sent ahead with it: that job's own call sends it to a fresh child. A call for another job
    ends the child first; a frame over ``AHEAD_BYTES`` is not sent ahead."""
    from conformance.worker import AHEAD_BYTES

    jobs = [echo_job([], returned=k) for k in range(6)]
    assert worker.call(jobs[0], timeout=10, ahead=jobs[1])["returned"] == 0
    assert worker.call(jobs[1], timeout=10, ahead=jobs[2])["returned"] == 1
    assert worker.call(jobs[2], timeout=10)["returned"] == 2 and worker.starts == 1
    # sent ahead for real: the child runs the crash job on its own, right after answering
    crash = {"api": "fake.crash"}
    assert worker.call(jobs[3], timeout=10, ahead=crash)["returned"] == 3
    pid = worker.pid
    deadline = time.monotonic() + 10
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(pid)
    with pytest.raises(WorkerError) as e:  # its own call reads what became of it
        worker.call(crash, timeout=10, label="the crash")
    assert e.value.kind == "crash" and "the crash" in str(e.value) and worker.starts == 1
    # the crash took jobs[5] with it: its own call sends it again, to a fresh child
    with pytest.raises(WorkerError):
        worker.call(crash, timeout=10, ahead=jobs[5])
    assert worker.call(jobs[5], timeout=10)["returned"] == 5 and worker.starts == 3
    # sent ahead and not asked for: the child goes, the job asked for gets its own answer
    assert worker.call(jobs[0], timeout=10, ahead=jobs[1])["returned"] == 0
    assert worker.call(jobs[4], timeout=10)["returned"] == 4 and worker.starts == 4
    big = echo_job([{"name": "w", "shape": [AHEAD_BYTES], "grad": np.ones(AHEAD_BYTES)}], returned=9)
    assert worker.call(jobs[2], timeout=10, ahead=big)["returned"] == 2
    assert worker.call(big, timeout=10)["returned"] == 9 and worker.starts == 4


# ---- shared parts (wire.SHARE): sent once, kept by the child --------------------------------


def _shared_job(key: str, scale: float, api: str = "fake.echo", n: int = 4) -> dict:
    return {"api": api, "args": {"returned": scale},
            "params": [{"name": "w", "grad": np.arange(n, dtype=np.float32) + 1}],
            wire.SHARE: {"key": key, "fields": ["params"]}}


def _sizes(worker, monkeypatch) -> list:
    sizes = []
    send = worker._send
    monkeypatch.setattr(worker, "_send", lambda data, deadline: (sizes.append(len(data)), send(data, deadline)))
    return sizes


def test_shared_part_is_sent_once_and_each_job_gets_a_fresh_copy(worker, monkeypatch):
    sizes = _sizes(worker, monkeypatch)
    want = np.arange(1000, dtype=np.float32) + 1
    for i in range(3):  # fake.double doubles its grad in place: the kept part must not change
        got = worker.call(_shared_job("a", i, "fake.double", 1000), timeout=10)
        assert_same_array(got["grads"]["w"], want * 2)
        assert got["returned"] == i and wire.SHARE not in got["echo"]
    assert sizes[0] > 4000 > sizes[1] == sizes[2]  # the 4,000 bytes of the grad went once
    assert list(worker._kept) == ["a"]
    # sent ahead too (as Runner.stream sends): the job behind goes without the part
    jobs = [_shared_job("a", 10 + i) for i in range(3)]
    got = [worker.call(j, timeout=10, ahead=nxt) for j, nxt in zip(jobs, jobs[1:] + [None])]
    assert [g["returned"] for g in got] == [10, 11, 12] and max(sizes[3:]) < 4000


def test_shared_parts_are_forgotten_oldest_first(worker, monkeypatch):
    import conformance.worker as worker_module
    monkeypatch.setattr(worker_module, "KEEP_ENTRIES", 2)
    sizes = _sizes(worker, monkeypatch)
    for key in "abca":  # c makes the child forget a (the least recently sent): a goes again
        got = worker.call(_shared_job(key, 0, n=1000), timeout=10)
        assert_same_array(got["grads"]["w"], np.arange(1000, dtype=np.float32) + 1)
    assert all(s > 4000 for s in sizes) and list(worker._kept) == ["c", "a"]
    worker.call(_shared_job("c", 0, n=1000), timeout=10)  # still held
    assert sizes[-1] < 4000 and list(worker._kept) == ["a", "c"]
    monkeypatch.setattr(worker_module, "KEEP_PART_BYTES", 100)  # too large to keep: sent each time
    for _ in range(2):
        worker.call(_shared_job("big", 0, n=1000), timeout=10)
        assert sizes[-1] > 4000 and "big" not in worker._kept


def test_shared_parts_go_again_to_a_fresh_child_and_a_lost_one_is_an_error(worker):
    worker.call(_shared_job("a", 0), timeout=10)
    with pytest.raises(WorkerError):
        worker.call({"api": "fake.crash"}, timeout=10)
    got = worker.call(_shared_job("a", 1), timeout=10)  # the new child was sent the part again
    assert_same_array(got["grads"]["w"], np.arange(4, dtype=np.float32) + 1) and worker.starts == 2
    worker._kept["ghost"] = 16  # the parent's record and the child disagree: never a silent guess
    with pytest.raises(BackendError, match="holds no shared part 'ghost'"):
        worker.call(_shared_job("ghost", 0), timeout=10)
