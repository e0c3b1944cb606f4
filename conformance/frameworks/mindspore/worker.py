"""The MindSpore worker module (``python -m conformance.worker_main
conformance.frameworks.mindspore.worker DEVICE``): ``info`` and ``run`` of the backend contract
(docs/ARCHITECTURE.md), one job at a time, dispatched on ``job["kind"]`` to the kind's module.
Imports only the standard library, numpy (<2) and mindspore.
"""

from __future__ import annotations

from . import clipping, derivation, training
from .tensors import gpu_reason, ms

NAME = "mindspore"

KINDS = {"clipping": clipping, "derivation": derivation, "training": training}
APIS = {"clipping": clipping.APIS, "derivation": derivation.APIS, "training": training.APIS}


def info(device: str) -> dict:
    return {"version": ms.__version__.split("+")[0], "build": ms.__version__,
            "devices": {"cpu": None, "gpu": gpu_reason()},
            "apis": {kind: sorted(table) for kind, table in APIS.items()}}


def run(job: dict) -> dict:
    kind, api = job["kind"], job["api"]
    if api not in APIS[kind]:
        raise NotImplementedError(f"the mindspore backend has no {kind} API {api}")
    return KINDS[kind].run(job)
