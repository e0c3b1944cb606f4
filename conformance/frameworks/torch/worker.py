"""The torch worker: runs one cell's job with the real torch API (worker process only:
``python -m conformance.worker_main conformance.frameworks.torch.worker DEVICE``).

``run(job)`` hands the job to its kind's module (``clipping``, ``derivation``, ``training``),
each with its table ``APIS`` (API name -> function). See docs/ARCHITECTURE.md for the job and
result shapes.
"""

from __future__ import annotations

import torch

from . import clipping, derivation, training

NAME = "torch"

APIS = {"clipping": clipping.APIS, "derivation": derivation.APIS, "training": training.APIS}

_KINDS = {"clipping": clipping, "derivation": derivation, "training": training}


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
    kind, api = job["kind"], job["api"]
    if api not in APIS.get(kind, {}):
        raise NotImplementedError(f"the torch backend has no {kind} API {api}")
    return _KINDS[kind].run(job)
