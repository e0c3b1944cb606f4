"""The parent side of the worker protocol: start, reuse, time out and restart worker processes.

One :class:`Worker` drives one child process running ``conformance.worker_main MODULE DEVICE``
(see ``worker_main`` and docs/ARCHITECTURE.md, "The worker protocol"). The child is started
lazily, reused for every call, and replaced transparently after it crashes, hangs past a call's
timeout or breaks the protocol: that call raises :class:`WorkerError` and the next call starts a
fresh process. An exception raised by the backend's ``run`` is a :class:`BackendError`, and the
worker stays alive.

:class:`WorkerPool` keeps one worker per ``(backend, device)``.

Threads: a :class:`Worker` is driven by one thread at a time (``call`` holds a lock, so a second
thread waits rather than corrupting the stream). Different workers, e.g. those of a pool, can be
driven from different threads concurrently.

POSIX only (process groups, ``poll``). Imports the standard library and ``wire`` (numpy; at the first frame: ``_wire``).
"""

from __future__ import annotations

import atexit
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

__all__ = ["WorkerError", "BackendError", "Worker", "WorkerPool", "PROTOCOL", "STDERR_TAIL"]

PROTOCOL = 3  # 2: arrays as raw bytes after the JSON (wire); 3: shared parts kept by the child
#: characters of the child's stderr kept in error messages
STDERR_TAIL = 3000
#: this ``conformance`` package's directory
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
#: what a child runs: its ``sys.path[0]`` (the current directory, for ``-c``) becomes the paths
#: in argv[1] (the suite's own directory first), then ``conformance.worker_main`` runs as __main__
_BOOT = ("import os, sys; sys.path[0:1] = sys.argv.pop(1).split(os.pathsep); "
         "import runpy; runpy.run_module('conformance.worker_main', run_name='__main__', alter_sys=True)")
_SUITE_PATH: list = []

_READ_CHUNK = 1 << 20
_PIPE_SIZE = 1 << 20
#: the largest frame ``call`` sends ahead (and the largest job it sends ahead behind): two such
#: frames fit in any pipe (Linux's default is 64 KiB), so sending ahead never waits on a child
#: that is busy writing its answer
AHEAD_BYTES = 16 << 10
#: a job's shared part (``job[wire.SHARE] = {"key": KEY, "fields": [NAMES]}``: those fields are
#: the same in every job naming KEY, e.g. a case's gradients across its sweep points) is sent
#: once and kept by the child, which hands every later job naming KEY a fresh copy; the parent
#: keeps at most this many bytes of parts in a child (and this many parts), the least recently
#: sent forgotten first, and sends a part over ``KEEP_PART_BYTES`` with each job instead
KEEP_BYTES = 64 << 20
KEEP_ENTRIES = 256
KEEP_PART_BYTES = 8 << 20
_F_SETPIPE_SZ = 1031  # Linux fcntl
_CLOSE_GRACE = 5.0  # seconds a child gets to exit after shutdown / EOF
_DUMP_GRACE = 0.2  # seconds a timed-out child gets to dump its stacks (faulthandler, SIGUSR1)


def _wire():
    """``conformance.wire``, imported (numpy with it: 50 ms) at the first frame rather than with
    this module, so that ``conformance run`` has started its workers before."""
    from conformance import wire

    return wire


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _describe_exit(returncode) -> str:
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        return f"died with signal {_signal_name(-returncode)}"
    return f"exited with code {returncode}"


class WorkerError(Exception):
    """The worker process failed: it could not start, died, hung or broke the protocol.

    ``kind`` is ``"startup"``, ``"crash"``, ``"timeout"`` or ``"protocol"``; ``message`` one
    readable sentence naming the cause (exit code or signal); ``stderr_tail`` the last
    ``STDERR_TAIL`` characters of the child's stderr. ``returncode`` is the child's exit status
    (negative: killed by that signal; None if unknown), ``signal`` its signal's name or None.
    The worker is dead afterwards; its next call starts a fresh process.
    """

    def __init__(self, kind: str, message: str, stderr_tail: str = "", *, backend: str = "",
                 device: str = "", label: str = "", returncode: int | None = None,
                 pid: int | None = None):
        super().__init__(kind, message)
        self.kind = kind
        self.message = message
        self.stderr_tail = stderr_tail
        self.backend = backend
        self.device = device
        self.label = label
        self.returncode = returncode
        self.pid = pid

    @property
    def signal(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            return _signal_name(-self.returncode)
        return None

    def __str__(self) -> str:
        tail = self.stderr_tail.strip("\n")
        if not tail.strip():
            return f"{self.message} (worker stderr was empty)"
        return f"{self.message} Worker stderr (last {len(tail)} chars):\n{tail}"

    def __reduce__(self):
        return (_rebuild, (WorkerError, (self.kind, self.message, self.stderr_tail),
                           dict(self.__dict__)))


class BackendError(Exception):
    """The backend's ``run`` raised inside the worker; the worker itself is fine.

    ``type``, ``message`` and ``traceback`` are the child's exception's class name, str() and
    formatted traceback; ``backend``, ``device`` and ``label`` say where.
    """

    def __init__(self, type: str, message: str, traceback: str = "", *, backend: str = "",
                 device: str = "", label: str = ""):
        super().__init__(type, message)
        self.type = type
        self.message = message
        self.traceback = traceback
        self.backend = backend
        self.device = device
        self.label = label

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"

    def __reduce__(self):
        return (_rebuild, (BackendError, (self.type, self.message, self.traceback),
                           dict(self.__dict__)))


def _rebuild(cls, args, state):
    obj = cls(*args)
    obj.__dict__.update(state)
    return obj


class _Timeout(Exception):
    pass


class _Dead(Exception):
    pass


class _ProtocolViolation(Exception):
    pass


class Worker:
    """One persistent worker process for ``backend`` on ``device``.

    ``module`` is the backend module the child imports (``conformance.frameworks.torch.worker``,
    ``tests.fake_backend``); ``python`` the interpreter it runs under. ``env``: variables set
    on top of ``os.environ`` for the child (a ``None`` value removes one). The child's
    ``sys.path`` starts with ``suite_path()`` (this very ``conformance`` package, nothing else)
    and ``paths`` (where a module outside the package lives: ``tests.fake_backend`` needs the
    repository), never the working directory.

    A startup failure is remembered: later ``start``/``call`` raise the same
    :class:`WorkerError` at once instead of paying for another failing start (``reset()``
    forgets it; ``retry_startup=True`` disables this). Crashes and timeouts are not remembered:
    the next call starts a fresh process.

    Attributes: ``starts`` (processes launched so far), ``pid`` (the current or last one),
    ``last_elapsed`` (seconds the child spent in the last ``run``), ``startup_error``.
    """

    def __init__(self, backend: str, module: str, device: str, python: str = sys.executable,
                 startup_timeout: float = 300.0, env: dict | None = None, *,
                 retry_startup: bool = False, paths: tuple = (), recycle_after: int | None = None):
        self.backend = backend
        #: calls after which the process is replaced by a fresh one before the next call
        #: (a framework whose state grows with every cell); ``recycles`` counts replacements
        self.recycle_after = recycle_after
        self.recycles = 0
        self._calls = 0
        self.paths = tuple(str(p) for p in paths)
        self.module = module
        self.device = device
        self.python = python
        self.startup_timeout = startup_timeout
        self.env = dict(env) if env else {}
        self.retry_startup = retry_startup
        self.starts = 0
        self.pid: int | None = None
        self.last_elapsed: float | None = None
        self._ahead: tuple | None = None  # (message id, job) sent behind the running one
        self.startup_error: WorkerError | None = None
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._hello: dict | None = None
        self._log = None  # the child's stderr file
        self._buf = bytearray()
        self._rpoll = None
        self._wpoll = None
        self._pidfd: int | None = None
        self._scratch: str | None = None  # the child's TMPDIR, removed once it is reaped
        self._next_id = 0
        # the shared parts the child holds (key -> bytes, least recently sent first): what this
        # process sent it, less what it told it to forget
        self._kept: dict = {}

    # ---- properties -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"{self.backend}/{self.device}"

    @property
    def alive(self) -> bool:
        """A process is running (as far as the last call knows: no system call made)."""
        return self._proc is not None

    @property
    def hello(self) -> dict:
        """The child's hello message (``info`` holds the backend's ``info(device)``).

        Starts the worker if it is not running.
        """
        with self._lock:
            if self._proc is None:
                self.start()
            return self._hello

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self._proc is not None else "stopped"
        return f"<Worker {self.name} {self.module} {state}, {self.starts} starts>"

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> dict:
        """Start the child (if not running) and wait for its hello; return the hello.

        Raises WorkerError(kind="startup") if it cannot start.
        """
        with self._lock:
            if self._proc is not None:
                return self._hello
            if self.startup_error is not None and not self.retry_startup:
                raise self.startup_error
            try:
                self._launch()
            except OSError as exc:
                err = WorkerError(
                    "startup",
                    f"worker {self.name} could not launch {self.python!r}: {exc}.",
                    backend=self.backend, device=self.device)
                self.startup_error = err
                raise err from None
            deadline = time.monotonic() + self.startup_timeout
            try:
                hello = self._recv(deadline)
            except _Timeout:
                err = self._fail("startup", f"did not say hello within "
                                 f"{self.startup_timeout:g} s", "", timed_out=True)
            except _Dead:
                err = self._fail("startup", None, "", wait=True, where=" before saying hello")
            except _ProtocolViolation as exc:
                err = self._fail("startup", f"sent an unreadable hello ({exc})", "")
            except BaseException:
                self._kill()
                raise
            else:
                err = self._check_hello(hello)
                if err is None:
                    self._hello = hello
                    self.startup_error = None
                    return hello
            self.startup_error = err
            raise err

    def reset(self) -> None:
        """Forget a remembered startup failure (the next call tries to start again)."""
        self.startup_error = None

    def close(self, timeout: float = _CLOSE_GRACE) -> None:
        """Ask the child to shut down, wait up to ``timeout`` s, then kill its process group.

        Safe to call at any time and more than once. If another thread is inside ``call``,
        the child is killed at once (that call raises WorkerError kind "crash").
        """
        if not self._lock.acquire(blocking=False):
            proc = self._proc
            if proc is not None:
                _killpg(proc.pid)
            return
        try:
            self._begin_close()
            self._end_close(time.monotonic() + timeout)
        finally:
            self._lock.release()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- calls ------------------------------------------------------------------------------

    def call(self, job: dict, timeout: float | None, label: str = "", ahead: dict | None = None) -> dict:
        """Run ``job`` in the child and return its result dict.

        ``timeout`` (seconds, None for none) bounds sending, running and receiving; ``label``
        (the cell id) appears in error messages: "... while running cell LABEL".
        Raises BackendError if the backend's ``run`` raised (the worker stays up),
        WorkerError if the worker could not start, died, timed out or broke the protocol
        (the worker is gone; the next call starts a fresh one), TypeError/ValueError if ``job``
        is not wire-encodable (nothing sent).

        ``ahead``: the job the next call will be for. Where both frames are small
        (``AHEAD_BYTES``) it is sent now, behind ``job``, so the child starts it the moment it
        has answered instead of waiting for this process to read the answer and send it; the
        next ``call`` with that same object only reads its answer. A child that dies, times out
        or is closed takes a job sent ahead with it: its call then sends it to a fresh child
        (it is not an error). A call for another job first ends the child (its pending answer
        would come first).
        """
        with self._lock:
            sent = self._ahead is not None and self._ahead[1] is job
            if self._ahead is not None and not sent:
                self._kill()  # a job sent ahead was not asked for: its answer is in the way
            if (not sent and self._proc is not None and self.recycle_after
                    and self._calls >= self.recycle_after):
                self.close()
                self.recycles += 1
            if self._proc is None:
                self.start()
            if sent:
                msg_id, data = self._ahead[0], None
                self._ahead = None
            else:
                data, kept = self._frame(self._next_id + 1, job)
                self._calls += 1
                self._next_id += 1
                msg_id = self._next_id
            deadline = None if timeout is None else time.monotonic() + timeout
            try:
                if data is not None:
                    self._send(data, deadline)
                    self._sent(kept)
                if (ahead is not None and (data is None or len(data) <= AHEAD_BYTES)
                        and not (self.recycle_after and self._calls >= self.recycle_after)):
                    # (a worker due for replacement gets no job ahead: the next call replaces
                    # it first, which a job already in its pipe would prevent)
                    self._send_ahead(ahead, deadline)
                reply = self._recv(deadline)
            except _Timeout:
                raise self._fail("timeout", f"timed out after {timeout:g} s", label,
                                 timed_out=True) from None
            except _Dead:
                raise self._fail("crash", None, label, wait=True) from None
            except _ProtocolViolation as exc:
                raise self._fail("protocol", f"broke the protocol ({exc})", label) from None
            except BaseException:
                self._kill()  # interrupted mid-message: the stream cannot be trusted
                raise
            if (not isinstance(reply, dict) or reply.get("type") != "result"
                    or reply.get("id") != msg_id):
                raise self._fail("protocol", f"broke the protocol (expected the result of "
                                 f"message {msg_id}, got {_summary(reply)})", label)
            self.last_elapsed = reply.get("elapsed")
            error = reply.get("error")
            if error is not None:
                raise BackendError(str(error.get("type", "Exception")),
                                   str(error.get("message", "")),
                                   str(error.get("traceback", "")),
                                   backend=self.backend, device=self.device, label=label)
            return reply.get("result")

    def _send_ahead(self, job: dict, deadline: float | None) -> None:
        """Send ``job`` as the next message if its frame is at most ``AHEAD_BYTES``."""
        try:
            data, kept = self._frame(self._next_id + 1, job)
        except (TypeError, ValueError):
            return  # its own call reports that, for its own cell
        if len(data) > AHEAD_BYTES:
            return
        self._next_id += 1
        self._calls += 1
        self._send(data, deadline)
        self._sent(kept)
        self._ahead = (self._next_id, job)

    def _frame(self, msg_id: int, job: dict) -> tuple:
        """(the frame of a run message for ``job``, what ``_sent`` records once it is sent).

        A job with a shared part the child holds goes without its fields; one the child does
        not hold goes whole and asks the child to keep them, and to forget (``forget``) the least
        recently sent parts beyond ``KEEP_BYTES``/``KEEP_ENTRIES``.
        Nothing here changes what the child holds until the frame is sent."""
        wire = _wire()
        share = job.get(wire.SHARE)
        msg = {"type": "run", "id": msg_id, "job": job}
        if share is None:
            return wire.frame(msg), None
        key, fields = share["key"], share["fields"]
        if key in self._kept:
            msg["job"] = {k: v for k, v in job.items() if k not in fields}
            msg["job"][wire.SHARE] = {"key": key}
            return wire.frame(msg), (key, None, ())
        size = wire.array_bytes([job.get(f) for f in fields])
        if size > KEEP_PART_BYTES:  # sent with every job, as if it had no shared part
            msg["job"] = {k: v for k, v in job.items() if k != wire.SHARE}
            return wire.frame(msg), None
        total, gone = sum(self._kept.values()) + size, []
        for old, nbytes in self._kept.items():  # oldest first
            if total <= KEEP_BYTES and len(self._kept) - len(gone) < KEEP_ENTRIES:
                break
            gone.append(old)
            total -= nbytes
        msg["job"] = dict(job)
        msg["job"][wire.SHARE] = {"key": key, "fields": list(fields)}
        if gone:
            msg["forget"] = gone
        return wire.frame(msg), (key, size, gone)

    def _sent(self, kept) -> None:
        """Record what a sent frame (``_frame``'s second value) changed in the child."""
        if kept is None:
            return
        key, size, gone = kept
        for old in gone:
            del self._kept[old]
        self._kept[key] = self._kept.pop(key) if size is None else size  # the most recently sent last

    def stderr_tail(self, n: int = STDERR_TAIL) -> str:
        """The last ``n`` characters the current child wrote to stderr (or stdout)."""
        return _tail(self._log, n)

    # ---- internals --------------------------------------------------------------------------

    def _child_env(self) -> dict:
        env = dict(os.environ)
        for key, value in self.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = str(value)
        env.setdefault("PYTHONUNBUFFERED", "1")  # the stderr tail is complete after a crash
        if self._scratch is not None and "TMPDIR" not in self.env:
            # what the frameworks write to the temporary directory (TensorFlow's autograph
            # sources, MindSpore's graph files) goes to a directory of this process's own,
            # removed when it is reaped: a killed worker runs no clean-up of its own
            env["TMPDIR"] = self._scratch
        return env

    def _launch(self) -> None:
        self._log = tempfile.TemporaryFile(
            prefix=f"conformance-worker-{self.backend}-{self.device}-", suffix=".log")
        self._scratch = tempfile.mkdtemp(prefix=f"conformance-worker-{self.backend}-tmp-")
        try:
            proc = subprocess.Popen(
                [self.python, "-c", _BOOT, os.pathsep.join([suite_path(), *self.paths]), self.module, self.device],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                env=self._child_env(), start_new_session=True, bufsize=0, close_fds=True)
        except BaseException:
            self._log.close()
            self._log = None
            self._remove_scratch()
            raise
        self._proc = proc
        self.pid = proc.pid
        self.starts += 1
        self._calls = 0
        self._kept = {}  # a new child holds nothing
        self._hello = None
        self._buf = bytearray()
        rfd, wfd = proc.stdout.fileno(), proc.stdin.fileno()
        for fd in (rfd, wfd):
            try:
                import fcntl

                fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_SIZE)
            except (ImportError, OSError):
                pass
        os.set_blocking(wfd, False)
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self._pidfd = None
        self._rpoll = select.poll()
        self._rpoll.register(rfd, select.POLLIN)
        self._wpoll = select.poll()
        self._wpoll.register(wfd, select.POLLOUT)
        if self._pidfd is not None:
            self._rpoll.register(self._pidfd, select.POLLIN)
            self._wpoll.register(self._pidfd, select.POLLIN)

    def _wait(self, poller, fd: int, deadline: float | None) -> None:
        """Wait until ``fd`` is ready; _Timeout past the deadline, _Dead if the child exits."""
        while True:
            if deadline is None:
                ms = -1
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Timeout()
                ms = math.ceil(remaining * 1000)
            if self._pidfd is None:  # no pidfd: look at the child once a second
                ms = 1000 if ms < 0 else min(ms, 1000)
            events = poller.poll(ms)
            if not events:
                if self._pidfd is None and self._proc.poll() is not None:
                    raise _Dead()
                continue
            for efd, _ in events:
                if efd == fd:
                    return
            # only the pidfd fired: the child exited and nothing is left to read
            raise _Dead()

    def _send(self, data: bytes, deadline: float | None) -> None:
        fd = self._proc.stdin.fileno()
        view = memoryview(data)
        try:
            while view:
                try:
                    view = view[os.write(fd, view):]
                except BlockingIOError:
                    self._wait(self._wpoll, fd, deadline)
        except (BrokenPipeError, ConnectionResetError):
            raise _Dead() from None

    def _recv(self, deadline: float | None):
        buf = self._buf
        fd = self._proc.stdout.fileno()
        wire = _wire()
        header = wire.HEADER
        while True:
            if len(buf) >= 4:
                (n,) = header.unpack_from(buf)
                end = 4 + n
                if len(buf) >= end:
                    payload = buf[4:end]
                    del buf[:end]
                    try:
                        return wire.decode(payload)
                    except Exception as exc:  # noqa: BLE001 - any garbage is a violation
                        raise _ProtocolViolation(f"undecodable frame: {exc}") from None
                need = end - len(buf)
            else:
                need = 4 - len(buf)
            self._wait(self._rpoll, fd, deadline)
            chunk = os.read(fd, min(max(need, 65536), _READ_CHUNK))
            if not chunk:
                raise _Dead()
            buf += chunk

    def _check_hello(self, hello) -> WorkerError | None:
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            return self._fail("protocol", f"sent {_summary(hello)} instead of a hello", "")
        error = hello.get("error")
        if error is not None:
            detail = f"{error.get('type', 'Exception')}: {error.get('message', '')}"
            return self._fail("startup", f"could not load backend module {self.module!r} "
                              f"({detail})", "", wait=True)
        if hello.get("protocol") != PROTOCOL:
            return self._fail("protocol", f"speaks protocol {hello.get('protocol')!r}, not "
                              f"{PROTOCOL} (an old conformance source tree on its path?)", "")
        return None

    def _fail(self, kind: str, what: str | None, label: str, *,
              timed_out: bool = False, wait: bool = False,
              where: str | None = None) -> WorkerError:
        """Finish off the child and build the WorkerError describing why.

        ``what`` completes "worker NAME (...) WHAT while running cell LABEL."; None describes
        how the child ended (exit code or signal). ``wait``: give the child a moment to exit
        on its own first (it is dying or has closed its stream), so its status is its own.
        """
        proc = self._proc
        pid = proc.pid if proc is not None else None
        if timed_out and proc is not None:
            # faulthandler in the child dumps every thread's stack to stderr on SIGUSR1
            try:
                os.kill(proc.pid, signal.SIGUSR1)
                time.sleep(_DUMP_GRACE)
            except OSError:
                pass
        returncode, exited = self._end_close(
            time.monotonic() + _CLOSE_GRACE if wait else None, keep_log=True)
        tail = _tail(self._log, STDERR_TAIL)
        if self._log is not None:
            self._log.close()
            self._log = None
        if what is None:
            if exited:
                what = _describe_exit(returncode)
            else:
                what = (f"closed its protocol stream but did not exit within "
                        f"{_CLOSE_GRACE:g} s")
        if where is not None:
            pass
        elif label:
            where = f" while running cell {label}"
        elif kind == "startup":
            where = " while starting"
        else:
            where = ""
        killed = "" if exited else ", and was killed"
        message = (f"worker {self.name} (pid {pid}, {self.module} under {self.python}) "
                   f"{what}{where}{killed}.")
        return WorkerError(kind, message, tail, backend=self.backend, device=self.device,
                           label=label, returncode=returncode, pid=pid)

    def _begin_close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:  # the pipe is non-blocking: a frame this small fits unless the child is stuck
            proc.stdin.write(_wire().frame({"type": "shutdown"}))
        except (OSError, ValueError):
            pass
        try:
            proc.stdin.close()  # EOF: exits even if it missed the shutdown frame
        except OSError:
            pass

    def _end_close(self, deadline: float | None, keep_log: bool = False):
        """Wait for the child to exit until ``deadline`` (None: not at all), kill its process
        group, reap it and release everything.

        Returns ``(returncode, exited)``: ``exited`` is whether it ended before being killed.
        """
        proc = self._proc
        if proc is None:
            return None, False
        exited = False
        if deadline is not None:
            exited = self._wait_exit(deadline)
        # the child is not reaped yet, so its pid (= its process group id) cannot be reused:
        # killing the group also ends the child's own children, if any
        _killpg(proc.pid)
        if not exited:
            try:
                proc.kill()
            except OSError:
                pass
        returncode = proc.wait()
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        self._proc = None
        self._hello = None
        self._ahead = None  # a job sent ahead went with the child
        self._rpoll = self._wpoll = None
        self._buf = bytearray()
        if not keep_log and self._log is not None:
            self._log.close()
            self._log = None
        self._remove_scratch()
        return returncode, exited

    def _remove_scratch(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _wait_exit(self, deadline: float) -> bool:
        """Wait (without reaping) until the child exits or ``deadline`` passes."""
        proc = self._proc
        if self._pidfd is not None:
            p = select.poll()
            p.register(self._pidfd, select.POLLIN)
            ms = max(0, math.ceil((deadline - time.monotonic()) * 1000))
            return bool(p.poll(ms))
        try:  # fallback: reaps the child; its pid may in theory be reused before killpg
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return True
        except subprocess.TimeoutExpired:
            return False

    def _kill(self) -> None:
        if self._proc is not None:
            self._end_close(None)


class WorkerPool:
    """One :class:`Worker` per ``(backend, device)``, created on first use and reused.

    ``modules`` maps a backend name to its module (``{"torch":
    "conformance.frameworks.torch.worker"}``), ``pythons`` a backend name to the interpreter its
    workers run under (default ``sys.executable``), ``env`` extra environment variables for
    every worker, ``paths`` extra ``sys.path`` entries (see Worker), ``recycle``
    ``{(backend, mode): cells}`` (``frameworks.recycling()``). ``get`` is thread-safe;
    each worker is driven by one thread at a time, and different workers may be driven from
    different threads concurrently. ``close()`` (also run
    at interpreter exit) shuts every worker down; the pool can be used again afterwards.
    """

    def __init__(self, modules: dict[str, str], pythons: dict[str, str] | None = None,
                 startup_timeout: float = 300.0, env: dict | None = None, paths: tuple = (),
                 recycle: dict | None = None):
        self.modules = dict(modules)
        self.paths = tuple(paths)
        self.pythons = dict(pythons or {})
        self.startup_timeout = startup_timeout
        self.env = dict(env) if env else None
        self.recycle = dict(recycle) if recycle else {}  # (backend, mode) -> Worker.recycle_after
        self._workers: dict[tuple[str, str], Worker] = {}
        self._lock = threading.Lock()
        self._atexit = False

    #: what ``get`` makes (a subclass of Worker: benchmarks/mainside.py records the answers)
    worker_class = Worker

    def get(self, backend: str, device: str, lane: str = "") -> Worker:
        """The worker for ``backend`` on ``device`` (created, not started, on first use).
        ``lane``: a separate worker of that backend and device (the runner gives each execution
        mode its own: the compiled cells of a framework run beside its eager ones, on another
        core, and neither mode's state reaches the other's cells; ``MODE#N``: one more worker of
        that mode, for a backend's cells split across two)."""
        key = (backend, device, lane)
        with self._lock:
            worker = self._workers.get(key)
            if worker is None:
                if backend not in self.modules:
                    raise KeyError(f"no worker module for backend {backend!r} "
                                   f"(known: {', '.join(sorted(self.modules)) or 'none'})")
                worker = self.worker_class(backend, self.modules[backend], device,
                                python=self.pythons.get(backend) or sys.executable,
                                startup_timeout=self.startup_timeout, env=self.env, paths=self.paths,
                                recycle_after=self.recycle.get((backend, lane.split("#")[0] or "eager")))
                self._workers[key] = worker
                if not self._atexit:
                    atexit.register(self.close)
                    self._atexit = True
            return worker

    def prestart(self, backends) -> None:
        """Start the cpu workers of ``backends`` in background threads, so each framework's
        import (seconds) overlaps loading the registry and the cases. A startup failure is
        kept by the worker and reported when a cell first asks for it."""
        def start(name: str) -> None:
            try:
                self.hello(name, "cpu")
            except WorkerError:
                pass

        for name in backends:
            if name in self.modules:
                threading.Thread(target=start, args=(name,), daemon=True).start()

    def hello(self, backend: str, device: str) -> dict:
        """The hello of that worker (starting it if needed): its ``info`` says whether the
        device is available. Raises WorkerError(kind="startup") if it cannot start."""
        return self.get(backend, device).hello

    def call(self, backend: str, device: str, job: dict, timeout: float | None,
             label: str = "") -> dict:
        """``get(backend, device).call(job, timeout, label)``."""
        return self.get(backend, device).call(job, timeout, label)

    @property
    def workers(self) -> list[Worker]:
        with self._lock:
            return list(self._workers.values())

    def close(self, timeout: float = _CLOSE_GRACE) -> None:
        """Shut down every worker (all asked at once, then each waited for)."""
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
            if self._atexit:
                atexit.unregister(self.close)
                self._atexit = False
        deadline = time.monotonic() + timeout
        locked = []
        for worker in workers:
            if worker._lock.acquire(blocking=False):
                locked.append(worker)
                worker._begin_close()
            else:
                worker.close()  # busy in another thread: killed at once
        try:
            for worker in locked:
                worker._end_close(deadline)
        finally:
            for worker in locked:
                worker._lock.release()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def suite_path() -> str:
    """A directory that holds only a link to this ``conformance`` package: the first entry of
    every worker's ``sys.path``, so that a worker imports exactly the suite its parent runs,
    whatever its working directory holds (a ``conformance/`` folder there, another clone), and
    without the rest of the directory the package sits in (a site-packages whose numpy 2 must
    not shadow a MindSpore worker's numpy 1). Made once per process, removed at exit."""
    if not _SUITE_PATH:
        root = tempfile.mkdtemp(prefix="conformance-suite-")
        os.symlink(PACKAGE_DIR, os.path.join(root, "conformance"))
        atexit.register(shutil.rmtree, root, True)
        _SUITE_PATH.append(root)
    return _SUITE_PATH[0]


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass


def _tail(f, n: int) -> str:
    if f is None:
        return ""
    try:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - 4 * n)
        data = os.pread(fd, size - start, start)  # pread: the child's file offset is shared
    except (OSError, ValueError):
        return ""
    return data.decode("utf-8", "replace")[-n:]


def _summary(obj, limit: int = 200) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[:limit] + "..."
