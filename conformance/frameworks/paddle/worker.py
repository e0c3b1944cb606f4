"""The Paddle worker: ``python -m conformance.worker_main conformance.frameworks.paddle.worker
DEVICE`` imports this module (in the worker process only: it imports paddle) and runs each job
through its kind's module (``clipping``, ``derivation``, ``distributed``, ``training``), whose ``APIS`` table maps
a full API name to the function that calls it. See docs/ARCHITECTURE.md for the job and result
shapes. stdlib + numpy + paddle only.
"""

from __future__ import annotations

import paddle

from ..base import api_tables, dispatch
from . import clipping, derivation, distributed, training
from .tensors import gpu_reason

NAME = "paddle"
#: kind -> the module that runs its jobs (its ``APIS``: API name -> function)
KINDS = {"clipping": clipping, "derivation": derivation, "distributed": distributed, "training": training}
APIS = api_tables(KINDS)


def info(device: str) -> dict:
    return {
        "version": paddle.__version__,
        "build": f"{paddle.__version__} ({'cuda ' + str(paddle.version.cuda()) if paddle.is_compiled_with_cuda() else 'cpu'},"
                 f" commit {paddle.version.commit[:10]})",
        "devices": {"cpu": None, "gpu": gpu_reason()},
        "apis": {kind: sorted(table) for kind, table in APIS.items()},
    }


def run(job: dict) -> dict:
    return dispatch(NAME, KINDS, job)
