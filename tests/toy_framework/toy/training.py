"""toy.sgd(lr): the training-step loop (micro-batches, clip_grad_norm_, plain SGD) over a network
of linear and tanh layers with a mean-squared-error loss; gradients by central differences."""

import numpy as np

from .common import central_difference

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}


def _forward(layers: list, params: dict, x):
    for lay in layers:
        if lay["type"] == "linear":
            x = x @ params[f"{lay['name']}.weight"].T
            if f"{lay['name']}.bias" in params:
                x = x + params[f"{lay['name']}.bias"]
        else:
            x = ACTIVATIONS[lay["type"]](x)
    return x


def sgd(job: dict) -> dict:
    model, step, lr = job["model"], job["step"], job["args"]["lr"]
    layers = model["layers"]
    params = {f"{lay['name']}.{k}": np.array(lay[k], dtype=np.float64) for lay in layers
              for k in ("weight", "bias") if lay.get(k) is not None}
    inputs = np.asarray(model["inputs"], dtype=np.float64)
    targets = np.asarray(model["targets"], dtype=np.float64)
    n = step["micro_batches"]
    grads = {}
    for scale in step["input_scales"]:
        batches = list(zip(np.split(inputs * scale, n), np.split(targets, n)))

        def loss():
            return sum(float(np.mean((_forward(layers, params, xb) - tb) ** 2)) / n for xb, tb in batches)

        grads = {name: central_difference(p, loss) for name, p in params.items()}
        if step["max_norm"] is not None:
            clipped = step["clip_params"] or list(params)
            norm = float(np.sqrt(sum(float(np.sum(grads[c] ** 2)) for c in clipped)))
            coef = min(1.0, step["max_norm"] / (norm + 1e-6))
            for c in clipped:
                grads[c] = grads[c] * coef
        for name in params:
            params[name] -= lr * grads[name]
    out = {f"param:{k}": v for k, v in params.items()}
    out.update({f"grad:{k}": v for k, v in grads.items()})
    out["skipped"] = np.zeros(len(step["input_scales"]))
    return {"outputs": out, "raised": None}


APIS = {"toy.sgd": sgd}


def run(job: dict) -> dict:
    return APIS[job["api"]](job)
