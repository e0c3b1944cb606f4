"""The TensorFlow worker module (``python -m conformance.worker_main
conformance.frameworks.tensorflow.worker DEVICE``): ``info`` and ``run`` of the backend contract
(docs/ARCHITECTURE.md), one job at a time, dispatched on ``job["kind"]`` to the kind's module.
Imports tensorflow once per worker (about 7 s), eagerly (no ``tf.function``), on CPU.
"""

from __future__ import annotations

import os

# TF's C++ logging (oneDNN notices, CPU feature lines) on stderr, before the import reads it:
# level 2 keeps errors only, so a cell's stderr tail shows what went wrong, not the banner.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from ..base import api_tables, dispatch  # noqa: E402
from . import clipping, derivation  # noqa: E402
from .tensors import gpu_reason  # noqa: E402

NAME = "tensorflow"
#: One intra-op (and inter-op) thread, so that a verdict is the same on every machine: TF's CPU
#: float32 reduce_sum splits a large tensor over the threads and adds the partial sums, so the same
#: call gives other numbers with another thread count (measured: a 4e6-element sum of squares is
#: 3.997515e6 on 1 or 2 threads, 3.9975152e6 on 8). Set before any op runs, as TF requires.
THREADS = 1
tf.config.threading.set_intra_op_parallelism_threads(THREADS)
tf.config.threading.set_inter_op_parallelism_threads(THREADS)
#: kind -> the module that runs its jobs (its ``APIS``: API name -> function)
KINDS = {"clipping": clipping, "derivation": derivation}
APIS = api_tables(KINDS)


def info(device: str) -> dict:
    import keras
    return {"version": tf.__version__,
            "build": f"tensorflow {tf.__version__} (CPU build: {not tf.test.is_built_with_cuda()}), keras {keras.__version__}",
            "devices": {"cpu": None, "gpu": gpu_reason()},
            "apis": {kind: sorted(table) for kind, table in APIS.items()},
            "threads": tf.config.threading.get_intra_op_parallelism_threads()}


def run(job: dict) -> dict:
    return dispatch(NAME, KINDS, job)
