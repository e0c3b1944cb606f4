"""A worker backend that answers with recorded results, in order (``benchmarks/mainside.py``).

Runs in a worker child like a framework's module (``python -m conformance.worker_main
replay_backend cpu``, this directory on its path). ``REPLAY_FILE`` names a wire payload written by
``mainside.py``: ``{"backend": NAME, "info": the real worker's info, "answers": [...]}``, one
answer per call of the recorded run, ``{"result": ...}`` or ``{"error": [type, message]}``. The
n-th job gets the n-th answer whatever it asks: the replayed run sends the same jobs in the same
order (the runner is deterministic), and ``mainside.py`` checks the replayed records against the
recorded ones. No framework is imported: the child's work is a lookup, so the run goes at the
pace of the main process.
"""

from __future__ import annotations

import os

from conformance import wire

with open(os.environ["REPLAY_FILE"], "rb") as _f:
    _RECORDED = wire.decode(_f.read())

NAME = _RECORDED["backend"]
_answers = iter(_RECORDED["answers"])


class ReplayedError(Exception):
    """The recorded run's backend raised; its type and message are in the text."""


def info(device: str) -> dict:
    return _RECORDED["info"]


def run(job: dict) -> dict:
    answer = next(_answers)
    if "error" in answer:
        raise ReplayedError(": ".join(answer["error"]))
    return answer["result"]
