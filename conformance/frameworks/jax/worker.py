"""The JAX worker module (``python -m conformance.worker_main conformance.frameworks.jax.worker
DEVICE``): ``info`` and ``run`` of the backend contract (docs/ARCHITECTURE.md), one job at a time,
dispatched on ``job["kind"]`` to the kind's module. Imports jax (with ``jax_enable_x64`` turned
on at import: ``tensors.py``), optax and numpy (>=2). Runs eagerly (no ``jax.jit``) on CPU.
"""

from __future__ import annotations

import tempfile

import jax
import optax

from ..base import api_tables, dispatch
from . import caches, clipping, derivation
from .tensors import gpu_reason, on_device

NAME = "jax"
#: kind -> the module that runs its jobs (its ``APIS``: API name -> function)
KINDS = {"clipping": clipping, "derivation": derivation}
APIS = api_tables(KINDS)
# the worker's own: the suite gives each worker a TMPDIR that goes when the worker does
caches.persist(tempfile.mkdtemp(prefix="jax-compilation-cache-"))


def info(device: str) -> dict:
    return {"version": jax.__version__, "build": f"jax {jax.__version__}, jaxlib {jax.lib.__version__}, "
                                                 f"optax {optax.__version__}, x64 {jax.config.jax_enable_x64}",
            "devices": {"cpu": None, "gpu": gpu_reason()},
            "apis": {kind: sorted(table) for kind, table in APIS.items()}}


def run(job: dict) -> dict:
    with on_device(job["device"]):  # the job's arrays and computations: tensors.on_device
        result = dispatch(NAME, KINDS, job)  # numpy only: nothing in it refers to a jax array
    caches.bound()  # the compiled executables of every shape so far: caches.py
    return result
