"""Networks from a job's ``model`` (worker side only): ``torch.nn`` modules built from the
materialised layers (torch layout, the cell's exact weights) and the case's loss. Shared by the
clipping kind (model cases) and the training kind."""

from __future__ import annotations

from collections import OrderedDict

import torch

from .tensors import tensor


def _linear(layer: dict) -> torch.nn.Module:
    return torch.nn.Linear(layer["in"], layer["out"], bias=layer["bias"] is not None)


def _conv2d(layer: dict) -> torch.nn.Module:
    return torch.nn.Conv2d(layer["in"], layer["out"], tuple(layer["kernel"]),
                           stride=tuple(layer["stride"]), padding=tuple(layer["padding"]),
                           bias=layer["bias"] is not None)


def _embedding(layer: dict) -> torch.nn.Module:
    return torch.nn.Embedding(layer["num"], layer["dim"])


#: layer type -> its module, built from the layer spec (its weights are copied in after)
WEIGHTED = {"linear": _linear, "conv2d": _conv2d, "embedding": _embedding}

#: layer type -> its module class (no weights)
PLAIN = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
         "flatten": torch.nn.Flatten}

#: loss type -> torch's functional loss; any other type is the output's sum or mean
LOSSES = {"cross_entropy": torch.nn.functional.cross_entropy,
          "mse": torch.nn.functional.mse_loss,
          "l1": torch.nn.functional.l1_loss}


def module(layer: dict, dtype, device) -> torch.nn.Module:
    kind = layer["type"]
    if kind not in WEIGHTED:
        return PLAIN[kind]()
    m = WEIGHTED[kind](layer).to(device=device, dtype=dtype)
    with torch.no_grad():
        m.weight.copy_(tensor(layer["weight"], dtype, device))
        if layer.get("bias") is not None:
            m.bias.copy_(tensor(layer["bias"], dtype, device))
    return m


def network(model: dict, dtype, device) -> torch.nn.Sequential:
    """``torch.nn.Sequential`` of the model's layers, named as the case names them."""
    return torch.nn.Sequential(OrderedDict(
        (layer["name"], module(layer, dtype, device)) for layer in model["layers"]))


def loss(spec: dict, out, targets):
    red = spec.get("reduction", "mean")
    fn = LOSSES.get(spec["type"])
    if fn is not None:
        return fn(out, targets, reduction=red)
    return out.sum() if red == "sum" else out.mean()
