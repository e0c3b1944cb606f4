"""The network of a case file (``model:``): layers, loss, inputs and targets, and the arrays
every framework and the oracle receive (``layer_arrays``). Clipping cases differentiate it;
training cases step it."""

from __future__ import annotations

import math
import typing
from typing import Annotated, Literal, Optional, Union

import numpy as np
from pydantic import Field, model_validator

from .. import tensors
from .values import Strict, TensorValue, tensor_data



def pair(v) -> list[int]:
    return [v, v] if isinstance(v, int) else list(v)


class _Layer(Strict):
    name: Optional[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]] = None


class Linear(_Layer):
    type: Literal["linear"]
    in_: Annotated[int, Field(alias="in", ge=1)]
    out: Annotated[int, Field(ge=1)]
    weight: Optional[TensorValue] = None
    bias: Optional[TensorValue] = None  # explicitly null = no bias; absent = default init


class Conv2d(_Layer):
    type: Literal["conv2d"]
    in_: Annotated[int, Field(alias="in", ge=1)]
    out: Annotated[int, Field(ge=1)]
    kernel: Union[int, Annotated[list[int], Field(min_length=2, max_length=2)]]
    stride: Union[int, Annotated[list[int], Field(min_length=2, max_length=2)]] = 1
    padding: Union[int, Annotated[list[int], Field(min_length=2, max_length=2)]] = 0
    weight: Optional[TensorValue] = None
    bias: Optional[TensorValue] = None


class Embedding(_Layer):
    type: Literal["embedding"]
    num: Annotated[int, Field(ge=1)]
    dim: Annotated[int, Field(ge=1)]
    weight: Optional[TensorValue] = None


class Activation(_Layer):
    type: Literal["relu", "tanh", "sigmoid", "flatten"]


Layer = Annotated[Union[Linear, Conv2d, Embedding, Activation], Field(discriminator="type")]


class Loss(Strict):
    type: Literal["cross_entropy", "mse", "l1", "sum"]
    reduction: Literal["mean", "sum"] = "mean"


class Model(Strict):
    layers: Annotated[list[Layer], Field(min_length=1)]
    loss: Loss
    inputs: TensorValue
    targets: Optional[TensorValue] = None

    @model_validator(mode="after")
    def _targets(self):
        if self.targets is None and self.loss.type != "sum":
            raise ValueError(f"loss {self.loss.type} needs targets")
        return self

    @model_validator(mode="after")
    def _no_param_dtype(self):
        """A network has one dtype (the cell's): ``dtype:`` is for injected gradients only."""
        values = [self.inputs, self.targets] + [getattr(layer, k, None) for layer in self.layers
                                                for k in ("weight", "bias")]
        if any(getattr(v, "dtype", None) is not None for v in values):
            raise ValueError("`dtype:` in a tensor generator is for injected `grads:` only; "
                             "a model runs in the cell's dtype")
        return self


def layer_arrays(model: Model, dtype: str) -> list[dict]:
    """Materialise layer specs: weights in torch layout, default init where none is given
    (uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) seeded by the layer index, like torch's scheme)."""
    return _layers(model, lambda value, default, shape: _param(value, default, shape, dtype))


def layer_param_specs(model: Model) -> list[dict]:
    """``layer_arrays``'s layers with ``(generator spec or value, shape)`` in place of each
    weight and bias array: what a reproduction snippet writes instead of a long literal."""
    return _layers(model, lambda value, default, shape: (
        tensor_data(value) if value is not None else default, shape))


def _layers(model: Model, param) -> list[dict]:
    out = []
    for i, layer in enumerate(model.layers):
        d = {"type": layer.type, "name": layer.name or str(i)}
        if layer.type in ("linear", "conv2d"):
            d.update({"in": layer.in_, "out": layer.out})
            if layer.type == "conv2d":
                d.update({"kernel": pair(layer.kernel), "stride": pair(layer.stride),
                          "padding": pair(layer.padding)})
                wshape = [layer.out, layer.in_, *d["kernel"]]
                fan_in = layer.in_ * d["kernel"][0] * d["kernel"][1]
            else:
                wshape, fan_in = [layer.out, layer.in_], layer.in_
            bound = 1.0 / math.sqrt(fan_in)
            default = {"random": "uniform", "low": -bound, "high": bound, "seed": i}
            d["weight"] = param(layer.weight, default, wshape)
            if "bias" in layer.model_fields_set and layer.bias is None:
                d["bias"] = None
            else:
                d["bias"] = param(layer.bias, dict(default, seed=1000 + i), [layer.out])
        elif layer.type == "embedding":
            d.update({"num": layer.num, "dim": layer.dim})
            default = {"random": "normal", "seed": i}
            d["weight"] = param(layer.weight, default, [layer.num, layer.dim])
        out.append(d)
    return out


def _param(value, default: dict, shape: list, dtype: str) -> np.ndarray:
    spec = tensor_data(value) if value is not None else default
    a = tensors.materialize(spec, shape_hint=shape)
    if list(a.shape) != list(shape):
        if a.size == 1:
            a = np.full(shape, float(a.reshape(-1)[0]))
        else:
            raise ValueError(f"a parameter of shape {list(a.shape)} where {shape} is needed")
    return tensors.round_to(a, dtype)


def batch_size(value) -> Optional[int]:
    """The first dimension of a tensor value when the file states it (a list, or a generator's
    ``shape``); None otherwise."""
    if isinstance(value, list):
        return len(value)
    shape = getattr(value, "shape", None)
    return shape[0] if shape else None


#: every layer ``type:`` a model may use (for "did you mean" suggestions)
LAYER_TYPES = tuple(t for m in (Linear, Conv2d, Embedding, Activation)
                    for t in typing.get_args(m.model_fields["type"].annotation))


def model_arrays(model: Model, dtype: str) -> tuple:
    """``(layers, inputs, targets)``: the network's arrays for a ``dtype`` cell, rounded to it
    (class and embedding indices stay integers), the same numbers for every framework and the
    oracle."""
    layers = layer_arrays(model, dtype)
    embed_first = layers[0]["type"] == "embedding"
    inputs = tensors.materialize(tensor_data(model.inputs), integer=embed_first)
    if not embed_first:
        inputs = tensors.round_to(inputs, dtype)
    targets = None
    if model.targets is not None:
        integer = model.loss.type == "cross_entropy"
        targets = tensors.materialize(tensor_data(model.targets), integer=integer)
        if not integer:
            targets = tensors.round_to(targets, dtype)
    return layers, inputs, targets


def model_job(layers: list, loss: dict, inputs, targets, dtype: str) -> dict:
    """The ``model`` part of a worker job: arrays in their carrier dtype (integers kept)."""
    def carry(a):
        return a if a is None or a.dtype.kind in "iu" else tensors.to_carrier(a, dtype)

    return {"layers": [{k: (carry(v) if hasattr(v, "dtype") else v) for k, v in layer.items()}
                       for layer in layers],
            "loss": loss, "inputs": carry(inputs), "targets": carry(targets)}
