"""Networks for MindSpore jobs (worker side): one ``mindspore.nn`` cell per materialised layer
(torch layout, as in the job), with the job's weights set, and the losses. Shared by the
clipping (model cases) and training kinds."""

from __future__ import annotations

from .tensors import ms, nn, tensor


def cell(layer: dict, dtype):
    """One mindspore.nn cell for a materialised layer, and its [(suffix, Parameter)]."""
    kind = layer["type"]
    if kind == "linear":
        has_bias = layer["bias"] is not None
        c = nn.Dense(layer["in"], layer["out"], has_bias=has_bias, dtype=dtype)
        params = [("weight", c.weight)] + ([("bias", c.bias)] if has_bias else [])
    elif kind == "conv2d":
        has_bias = layer["bias"] is not None
        ph, pw = layer["padding"]
        c = nn.Conv2d(layer["in"], layer["out"], tuple(layer["kernel"]), stride=tuple(layer["stride"]),
                      pad_mode="pad", padding=(ph, ph, pw, pw), has_bias=has_bias, dtype=dtype)
        params = [("weight", c.weight)] + ([("bias", c.bias)] if has_bias else [])
    elif kind == "embedding":
        c = nn.Embedding(layer["num"], layer["dim"])
        # nn.Embedding creates a float32 table whatever its dtype= says, and set_data keeps that
        # dtype: replace the parameter with one of the cell's dtype
        c.embedding_table = ms.Parameter(tensor(layer["weight"], dtype), name="embedding_table")
        params = [("weight", c.embedding_table)]
    else:
        return ACTIVATIONS[kind](), []
    for suffix, p in params:
        value = layer["weight"] if suffix == "weight" else layer["bias"]
        if kind != "embedding":
            p.set_data(tensor(value, dtype))
        if p.dtype != dtype:  # set_data may keep the parameter's dtype: never compute in another
            raise TypeError(f"{layer['name']}.{suffix} is {p.dtype} after set_data, wanted {dtype}")
    return c, params


#: layer types without parameters -> their cell class
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "flatten": nn.Flatten}


def parameter_names(layers: list) -> list:
    """The names ``cell`` gives the layers' parameters, in order, without building them."""
    return [f"{l['name']}.{s}" for l in layers
            for s in (("weight", "bias") if l["type"] in ("linear", "conv2d") else
                      ("weight",) if l["type"] == "embedding" else ())
            if s == "weight" or l.get("bias") is not None]


def loss_fn(spec: dict):
    red = spec.get("reduction", "mean")
    kind = spec["type"]
    if kind == "cross_entropy":
        return nn.CrossEntropyLoss(reduction=red)  # class indices as int32 (see tensors.tensor)
    if kind == "mse":
        return nn.MSELoss(reduction=red)
    if kind == "l1":
        return nn.L1Loss(reduction=red)
    return (lambda out, _t: out.sum()) if red == "sum" else (lambda out, _t: out.mean())
