"""The MindSpore worker module (``python -m conformance.worker_main
conformance.frameworks.mindspore.worker DEVICE``): ``info`` and ``run`` of the backend contract
(docs/ARCHITECTURE.md), one job at a time, dispatched on ``job["kind"]`` to the kind's module.
Imports only the standard library, numpy (<2) and mindspore.
"""

from __future__ import annotations

from ..base import api_tables, dispatch
from . import clipping, derivation, distributed, training
from .tensors import gpu_reason, ms

NAME = "mindspore"
#: kind -> the module that runs its jobs (its ``APIS``: API name -> function)
KINDS = {"clipping": clipping, "derivation": derivation, "distributed": distributed, "training": training}
APIS = api_tables(KINDS)


def info(device: str) -> dict:
    return {"version": ms.__version__.split("+")[0], "build": ms.__version__,
            "devices": {"cpu": None, "gpu": gpu_reason()},
            "apis": {kind: sorted(table) for kind, table in APIS.items()}}


def run(job: dict) -> dict:
    return dispatch(NAME, KINDS, job)
