"""The torch worker: runs one cell's job with the real torch API (worker process only:
``python -m conformance.worker_main conformance.frameworks.torch.worker DEVICE``).

``run(job)`` hands the job to its kind's module (``clipping``, ``derivation``, ``distributed``,
``training``), each with its table ``APIS`` (API name -> function). See docs/ARCHITECTURE.md for the job and
result shapes.
"""

from __future__ import annotations

import torch

from ..base import api_tables, dispatch
from . import clipping, derivation, distributed, training

NAME = "torch"
#: One intra-op thread, so that a verdict is the same on every machine: torch's CPU reductions
#: other than the vectorised L2 split a tensor over 32,768 elements into one chunk per thread
#: and add the chunks' float32 sums (docs/matrix_evidence/accumulation.py), so the same call
#: gives other numbers with another core count. The registry's `torch-float32-norm-summation`
#: describes the one-thread arithmetic.
THREADS = 1
torch.set_num_threads(THREADS)
#: kind -> the module that runs its jobs (its ``APIS``: API name -> function)
KINDS = {"clipping": clipping, "derivation": derivation, "distributed": distributed, "training": training}
APIS = api_tables(KINDS)


def info(device: str) -> dict:
    cuda = torch.cuda.is_available()
    return {
        "version": torch.__version__.split("+")[0],
        "build": torch.__version__,
        "devices": {"cpu": None, "gpu": None if cuda else
                    "torch.cuda.is_available() is False (no CUDA device or a CPU-only build)"},
        "apis": {kind: sorted(table) for kind, table in APIS.items()},
        "threads": torch.get_num_threads(),
    }


def run(job: dict) -> dict:
    return dispatch(NAME, KINDS, job)
