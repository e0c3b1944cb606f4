"""toy.clip_grad_norm: every injected gradient scaled by min(1, max_norm / (L2 norm + 1e-6))."""

import os
import time

import numpy as np

from .common import rounded


def clip_grad_norm(grads: dict, args: dict, dtype: str):
    present = [g for g in grads.values() if g is not None]
    norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in present)))
    coef = min(1.0, args["max_norm"] / (norm + 1e-6))
    if os.environ.get("TOY_NOISE"):  # a kernel whose last bits differ from process to process, for tests
        coef = coef + os.getpid() * float(np.spacing(coef))  # within float64 tolerance
    return {n: None if g is None else rounded(g * coef, dtype) for n, g in grads.items()}, norm


APIS = {"toy.clip_grad_norm": clip_grad_norm}


def run(job: dict) -> dict:
    time.sleep(float(os.environ.get("TOY_SECONDS_PER_CELL", "0")))  # a slow framework, for tests
    grads = {p["name"]: None if p["grad"] is None else np.asarray(p["grad"], dtype=np.float64)
             for p in job["params"]}
    out, norm = APIS[job["api"]](grads, job["args"], job["dtype"])
    return {"grads": out, "raw_grads": None, "returned": norm, "raised": None}
