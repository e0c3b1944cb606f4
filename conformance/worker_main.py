"""The worker child: ``python -m conformance.worker_main MODULE DEVICE``.

Speaks the worker protocol (version 3, see docs/ARCHITECTURE.md) on its original stdin/stdout:

    child  -> {"type": "hello", "protocol": 3, "backend": NAME, "pid": N, "python": "3.11.7",
               "executable": "...", "info": info(DEVICE)}
            | {"type": "hello", "protocol": 3, "error": {"type", "message", "traceback"}}  (exit 1)
    parent -> {"type": "run", "id": 7, "job": JOB, "forget": [KEY, ...]}
    child  -> {"type": "result", "id": 7, "result": run(JOB), "elapsed": seconds}
            | {"type": "result", "id": 7, "error": {"type", "message", "traceback"}, "elapsed": s}
    parent -> {"type": "shutdown"}                      (or end of stdin)          -> exit 0

A job's shared part: ``JOB["$share"] = {"key": KEY, "fields": [NAMES]}`` asks the child to keep
those fields of the job under KEY; ``{"key": KEY}`` alone means "those fields, as kept"; each
job gets its own copy (``wire.fresh``) and ``$share`` is removed before ``run`` sees the job.
``forget`` names kept parts to drop first (the parent decides what the child holds).

Before anything else the protocol streams are moved to private descriptors: fd 1 is pointed at
stderr (and ``sys.stdout`` at ``sys.stderr``) so that whatever a framework prints, from Python or
from C, cannot corrupt the stream, and fd 0 is pointed at /dev/null. faulthandler dumps the
Python stacks to stderr on a fatal signal, and on SIGUSR1 (the parent sends it before killing a
worker that timed out), so the parent's stderr tail shows where the worker was.

Imports only the standard library and numpy (through ``wire``) and keeps to Python 3.9 syntax.
"""

from __future__ import annotations

import os
import sys

PROTOCOL = 3  # 2: arrays as raw bytes after the JSON (wire); 3: shared parts kept (``$share``)


def _protect_stdio():
    """Take fds 0 and 1 for the protocol; return (binary reader, binary writer)."""
    proto_out = os.dup(1)  # non-inheritable: a framework's subprocesses do not get it
    os.dup2(2, 1)  # fd 1 -> stderr: C-level printf and os.write(1, ...) land in the log
    proto_in = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the process
    return os.fdopen(proto_in, "rb"), os.fdopen(proto_out, "wb")


def _error(exc: BaseException) -> dict:
    import traceback

    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def main(argv=None) -> int:
    reader, writer = _protect_stdio()

    import faulthandler
    import platform
    import signal
    import time

    faulthandler.enable(file=sys.stderr, all_threads=True)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)

    from conformance import wire

    argv = sys.argv[1:] if argv is None else list(argv)

    def send_bytes(data: bytes) -> bool:
        try:
            writer.write(data)
            writer.flush()
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False  # the parent is gone

    def send(msg) -> bool:
        return send_bytes(wire.frame(msg))

    try:
        if len(argv) != 2:
            raise SystemExit("usage: python -m conformance.worker_main MODULE DEVICE")
        module_name, device = argv
        import importlib

        module = importlib.import_module(module_name)
        hello = {
            "type": "hello",
            "protocol": PROTOCOL,
            "backend": module.NAME,
            "pid": os.getpid(),
            "python": platform.python_version(),
            "executable": sys.executable,
            "info": module.info(device),
        }
        hello_frame = wire.frame(hello)  # fails here, not half-way, if info is unencodable
    except BaseException as exc:  # noqa: BLE001 - any startup failure is reported, then exit 1
        sys.stderr.write(_error(exc)["traceback"])
        sys.stderr.flush()
        send({"type": "hello", "protocol": PROTOCOL, "pid": os.getpid(),
              "python": platform.python_version(), "executable": sys.executable,
              "error": _error(exc)})
        return 1
    if not send_bytes(hello_frame):
        return 0
    del hello, hello_frame

    run = module.run
    kept = {}  # key -> a job's shared fields (see "$share" above)

    def job_of(msg) -> dict:
        for key in msg.get("forget") or ():
            kept.pop(key, None)
        job = msg["job"]
        share = job.pop(wire.SHARE, None)
        if share is None:
            return job
        if "fields" in share:
            kept[share["key"]] = {f: job[f] for f in share["fields"]}
        elif share["key"] not in kept:
            raise LookupError(f"the worker holds no shared part {share['key']!r} (it holds {len(kept)})")
        job.update(wire.fresh(kept[share["key"]]))
        return job

    while True:
        try:
            msg = wire.read_frame(reader)
        except EOFError:
            return 0
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "shutdown":
            return 0
        if kind != "run":
            ok = send({"type": "result", "id": msg.get("id") if isinstance(msg, dict) else None,
                       "error": {"type": "ProtocolError",
                                 "message": f"unknown message type {kind!r}", "traceback": ""}})
            if not ok:
                return 0
            continue
        msg_id = msg.get("id")
        t0 = time.perf_counter()
        try:
            reply = {"type": "result", "id": msg_id, "result": run(job_of(msg))}
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported to the parent
            reply = {"type": "result", "id": msg_id, "error": _error(exc)}
        reply["elapsed"] = time.perf_counter() - t0
        try:
            data = wire.frame(reply)
        except (TypeError, ValueError) as exc:  # the result is not wire-encodable
            err = _error(exc)
            err["message"] = f"the backend's result cannot be sent: {err['message']}"
            data = wire.frame({"type": "result", "id": msg_id, "error": err,
                               "elapsed": reply["elapsed"]})
        if not send_bytes(data):
            return 0
        del reply, data, msg


def _profiled_main(path: str) -> int:
    """main() under cProfile, stats written to ``PATH.<pid>`` (``CONFORMANCE_WORKER_PROFILE``):
    the worker's side of a run, which a profile of the parent process cannot see."""
    import cProfile

    prof = cProfile.Profile()
    try:
        return prof.runcall(main)
    finally:
        prof.dump_stats(f"{path}.{os.getpid()}")


if __name__ == "__main__":
    _profile = os.environ.get("CONFORMANCE_WORKER_PROFILE")
    code = _profiled_main(_profile) if _profile else main()
    # Skip interpreter teardown: with a framework loaded it takes ~0.5 s (torch) and runs
    # nothing the protocol needs; every frame has already been written and flushed.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
