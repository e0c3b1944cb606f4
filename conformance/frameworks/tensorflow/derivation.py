"""TensorFlow's gradient-derivation API for derivation jobs (worker side only; docs/derivation.md).

``tf.GradientTape().gradient(target, sources, unconnected_gradients=...)``: the case's function is
evaluated under a tape that watches every input (``tf.constant`` + ``tape.watch``) and weight
(``tf.Variable``, watched automatically); ``target`` is the list of differentiated outputs (the
tape differentiates their sum, a non-scalar one with an all-ones cotangent), ``sources`` the
differentiated inputs and weights. TF has no ``allow_unused``: a source the target does not
depend on gets None (``UnconnectedGradients.NONE``, the default) or zeros (``ZERO``, the suite's
``.unconnected_zero`` form), never an error. ``APIS``: API name -> ``call(args, fn, dtype,
repeat)``, which returns gradients by name.
"""

from __future__ import annotations

import tensorflow as tf

from ...kinds.derivation.ops import evaluate
from .tensors import DTYPES, numpy, tensor

PRIMS = {"tanh": tf.math.tanh, "sum": tf.reduce_sum, "mean": tf.reduce_mean, "squeeze": tf.squeeze,
         "t": tf.transpose}


def _gradient(unconnected):
    def call(args: dict, fn: dict, dtype, repeat: int) -> dict:
        inputs = {n: tensor(a, dtype) for n, a in fn["inputs"]}  # the case's shape exactly (0-d stays 0-d)
        weights = {n: tf.Variable(tensor(a, dtype), name=n.replace(".", "_")) for n, a in fn["weights"]}
        leaves = {**inputs, **weights}
        for _ in range(repeat):  # functional: every call returns one pass's gradients
            with tf.GradientTape() as tape:
                for t in inputs.values():
                    tape.watch(t)
                env = evaluate(fn["ops"], leaves, PRIMS)
                target = [env[o] for o in args["outputs"]]
            res = tape.gradient(target, [leaves[n] for n in args["inputs"]], unconnected_gradients=unconnected)
        return {n: numpy(g) for n, g in zip(args["inputs"], res)}
    return call


APIS = {
    "tf.GradientTape.gradient": _gradient(tf.UnconnectedGradients.NONE),
    "tf.GradientTape.gradient.unconnected_zero": _gradient(tf.UnconnectedGradients.ZERO),
}


def run(job: dict) -> dict:
    call = APIS[job["api"]]
    try:
        grads = call(job["args"], job["function"], DTYPES[job["dtype"]], int(job.get("repeat", 1)))
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": None, "values": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    return {"grads": grads, "values": None, "raised": None}
