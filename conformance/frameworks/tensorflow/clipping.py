"""TensorFlow's clipping APIs for clipping jobs (worker side only; docs/ARCHITECTURE.md).

TensorFlow keeps gradients apart from variables: injected gradients become a list of tf tensors
in the job's parameter order, ``None`` where a parameter has no gradient (what
``tape.gradient`` gives for an unconnected variable; ``tf.clip_by_global_norm`` documents that
it ignores ``None`` entries and returns them as ``None``; the per-tensor composites skip them).
Model jobs build the network in plain tf ops (``nets.py``) and take ``tf.GradientTape``
gradients. Each API returns the clipped list (nothing happens in place) and the norm it returns,
if any (``tf.clip_by_global_norm``'s second result).

``tf.keras.optimizers.SGD.<clip>`` (suite-only names): a Keras 3 ``SGD(learning_rate=1.0,
<clip>=v)`` applies the gradients to zero ``tf.Variable``s of the gradients' dtypes and shapes;
the update is exactly ``-clipped`` (``0 - 1.0 * g``), read back as ``-variable``. Keras drops
``None`` gradients before clipping (with a warning), so those come back ``None``; with no
gradient at all it raises ValueError ("No gradients provided for any variable.").

Compiled mode (docs/modes.md): the same call inside ``tf.function`` (``compiled.py``); for a
Keras optimizer the variables and the optimizer are built eagerly and ``apply_gradients`` is
the traced function, as in a compiled training step.
"""

from __future__ import annotations

import warnings

import tensorflow as tf

from . import compiled, nets
from .tensors import DTYPES, numpy, tensor, tensor_args


def _pure(fn):
    """An API call ``fn(grads, args) -> (clipped, norm)``, eager or inside a cached tf.function."""
    def call(api: str, grads: list, args: dict, compile: bool):
        return compiled.cached(api, fn, args)(grads) if compile else fn(grads, args)
    return call


@_pure
def _clip_by_global_norm(grads: list, args: dict):
    clipped, norm = tf.clip_by_global_norm(grads, **args)
    return clipped, norm


def _per_tensor(fn):
    """A per-tensor function applied to each gradient (``None`` left alone); returns no norm."""
    def call(grads: list, args: dict):
        return [None if g is None else fn(g, **args) for g in grads], None
    return _pure(call)


def _keras_sgd(option: str):
    """One Keras ``SGD(learning_rate=1.0, <option>=v)`` step from zero variables: ``-variable``."""
    def call(api: str, grads: list, args: dict, compile: bool):
        zeros = [tf.Variable(tf.zeros_like(g) if g is not None else tf.zeros([1]), name=f"p{i}")
                 for i, g in enumerate(grads)]
        opt = tf.keras.optimizers.SGD(learning_rate=1.0, **{option: args[option]})
        opt.build(zeros)  # its variables exist before any traced step, as after a first fit step
        def step(gs):
            opt.apply_gradients(zip(gs, zeros))
        with warnings.catch_warnings():  # Keras warns about parameters without a gradient
            warnings.simplefilter("ignore")
            (compiled.fresh(api, step) if compile else step)(grads)
        return [None if g is None else -v for g, v in zip(grads, zeros)], None
    return call


APIS = {
    "tf.clip_by_global_norm": _clip_by_global_norm,
    "tf.clip_by_norm": _per_tensor(tf.clip_by_norm),
    # looked up at call time: TF 2.21 has none (AttributeError, declared unsupported)
    "tf.clip_by_average_norm": _per_tensor(lambda g, **a: tf.clip_by_average_norm(g, **a)),
    "tf.clip_by_value": _per_tensor(tf.clip_by_value),
    "tf.keras.optimizers.SGD.global_clipnorm": _keras_sgd("global_clipnorm"),
    "tf.keras.optimizers.SGD.clipnorm": _keras_sgd("clipnorm"),
    "tf.keras.optimizers.SGD.clipvalue": _keras_sgd("clipvalue"),
}


def run(job: dict) -> dict:
    call = APIS[job["api"]]
    dtype = DTYPES[job["dtype"]]
    if "model" in job:
        try:
            names, grads = nets.gradients(job["model"], dtype)
        except Exception as e:  # no kernel for this dtype, say: reported for the registry to declare
            return {"grads": {}, "raw_grads": None, "returned": None,
                    "raised": {"type": type(e).__name__, "message": str(e)}}
        raw = {n: numpy(g) for n, g in zip(names, grads)}
    else:
        names = [p["name"] for p in job["params"]]
        grads = [None if p["grad"] is None else tensor(p["grad"], DTYPES[p.get("dtype", job["dtype"])])
                 for p in job["params"]]
        raw = None
    try:
        out, returned = call(job["api"], grads, tensor_args(job["args"]), job.get("mode") == "compiled")
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": {n: numpy(g) for n, g in zip(names, grads)}, "raw_grads": raw,
                "returned": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    norm = None if returned is None else float(numpy(returned))
    return {"grads": {n: numpy(g) for n, g in zip(names, out)}, "raw_grads": raw,
            "returned": norm, "raised": None}
