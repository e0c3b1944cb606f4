"""The torch worker: runs one cell's job with the real torch API (worker process only:
``python -m conformance.worker_main conformance.frameworks.torch.worker DEVICE``).

``run(job)`` hands the job to its kind's module (``clipping``, ``derivation``, ``training``),
each with its table ``APIS`` (API name -> function). See docs/ARCHITECTURE.md for the job and
result shapes.
"""

from __future__ import annotations

import torch

from ..base import api_tables, dispatch
from . import clipping, derivation, training

NAME = "torch"
#: kind -> the module that runs its jobs (its ``APIS``: API name -> function)
KINDS = {"clipping": clipping, "derivation": derivation, "training": training}
APIS = api_tables(KINDS)


def info(device: str) -> dict:
    cuda = torch.cuda.is_available()
    return {
        "version": torch.__version__.split("+")[0],
        "build": torch.__version__,
        "devices": {"cpu": None, "gpu": None if cuda else
                    "torch.cuda.is_available() is False (no CUDA device or a CPU-only build)"},
        "apis": {kind: sorted(table) for kind, table in APIS.items()},
    }


def run(job: dict) -> dict:
    return dispatch(NAME, KINDS, job)
