"""A backend module for testing the worker machinery: no framework, just misbehaviour on demand.

Runs inside ``python -m conformance.worker_main tests.fake_backend DEVICE``. ``run`` dispatches
on ``job["api"]``:

- ``fake.echo``: returns ``{"grads": {param name: its grad}, "raw_grads": None, "returned":
  job["args"].get("returned"), "raised": None, "dtypes": {name: dtype name}, "echo": job}``
- ``fake.raise``: raises ValueError("boom")
- ``fake.crash``: kills itself with SIGKILL
- ``fake.segv``: sends itself SIGSEGV (faulthandler prints the stack first)
- ``fake.fork_crash``: forks a sleeping grandchild (holding the pipes), then SIGKILLs itself
- ``fake.exit``: ``os._exit(3)``
- ``fake.hang``: sleeps forever
- ``fake.print``: prints junk to stdout (Python and fd 1) and stderr, then echoes
- ``fake.stderr``: writes ``job["args"]["text"]`` to stderr, then returns {}
- ``fake.unencodable``: returns an object the wire cannot carry
- ``fake.pid``: returns {"pid": os.getpid()}
- ``fake.double``: doubles each param's grad in place (as ``torch.from_numpy`` and an in-place
  clip do), then echoes

Environment: ``FAKE_BACKEND_IMPORT_ERROR=1`` makes the import fail with ImportError;
``FAKE_BACKEND_INFO_ERROR=1`` makes ``info()`` raise RuntimeError.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import numpy as np

if os.environ.get("FAKE_BACKEND_IMPORT_ERROR"):
    raise ImportError("fake_backend: import refused (FAKE_BACKEND_IMPORT_ERROR is set)")

NAME = "fake"


def info(device: str) -> dict:
    if os.environ.get("FAKE_BACKEND_INFO_ERROR"):
        raise RuntimeError("fake_backend: info refused (FAKE_BACKEND_INFO_ERROR is set)")
    return {"version": "0", "devices": {"cpu": None, "gpu": "fake has no device 'gpu'"},
            "numpy": np.__version__}


def _echo(job: dict) -> dict:
    grads = {}
    for p in job.get("params", []):
        grads[p["name"]] = p.get("grad")
    return {
        "grads": grads,
        "raw_grads": None,
        "returned": job.get("args", {}).get("returned"),
        "raised": None,
        "dtypes": {k: (None if v is None else str(v.dtype)) for k, v in grads.items()},
        "echo": job,
    }


def run(job: dict) -> dict:
    api = job["api"]
    if api == "fake.echo":
        return _echo(job)
    if api == "fake.raise":
        raise ValueError("boom")
    if api == "fake.crash":
        sys.stderr.write("fake_backend: about to SIGKILL myself\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
    if api == "fake.segv":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(60)
    if api == "fake.fork_crash":
        # a grandchild that inherits the protocol pipes, then the worker dies: the parent must
        # notice the death although the pipes stay open, and kill the grandchild with the group
        child = os.fork()
        if child == 0:
            try:
                time.sleep(60)
            finally:
                os._exit(0)
        sys.stderr.write(f"fake_backend: grandchild {child}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
    if api == "fake.exit":
        sys.stderr.write("fake_backend: exiting with code 3\n")
        sys.stderr.flush()
        os._exit(3)
    if api == "fake.hang":
        while True:
            time.sleep(3600)
    if api == "fake.print":
        print("junk on sys.stdout", {"not": "a frame"})
        sys.stdout.write("\x00\x00\x00\x05hello")  # looks like a frame header
        sys.stdout.flush()
        os.write(1, b"\x00\x00\x10\x00junk straight to fd 1\n")
        print("junk on stderr", file=sys.stderr)
        os.write(2, b"junk straight to fd 2\n")
        return _echo(job)
    if api == "fake.stderr":
        sys.stderr.write(job["args"]["text"])
        sys.stderr.flush()
        return {}
    if api == "fake.unencodable":
        return {"value": object()}
    if api == "fake.pid":
        return {"pid": os.getpid()}
    if api == "fake.double":
        for p in job.get("params", []):
            p["grad"] *= 2
        return _echo(job)
    if api == "fake.tempfile":  # leaves a file in the temporary directory, as frameworks do
        import tempfile
        fd, path = tempfile.mkstemp(prefix="fake-backend-")
        os.close(fd)
        return {"tmpdir": tempfile.gettempdir(), "path": path}
    raise NotImplementedError(f"fake backend has no api {api!r}")
