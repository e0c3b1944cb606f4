"""The toy worker: numpy computes what a framework would."""

import numpy as np

from ..base import api_tables, dispatch
from . import clipping, derivation, training

NAME = "toy"
KINDS = {"clipping": clipping, "derivation": derivation, "training": training}
APIS = api_tables(KINDS)


def info(device: str) -> dict:
    return {"version": "0.1", "build": f"numpy {np.__version__}",
            "devices": {"cpu": None, "gpu": "the toy framework has no GPU"},
            "apis": {kind: sorted(table) for kind, table in APIS.items()}}


def run(job: dict) -> dict:
    return dispatch(NAME, KINDS, job)
