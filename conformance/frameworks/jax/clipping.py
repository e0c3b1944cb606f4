"""optax's clipping transformations for clipping jobs (worker side only; docs/ARCHITECTURE.md).

JAX keeps gradients apart from parameters, as a pytree: injected gradients become a dict
``{param name: jnp array}``; a parameter whose gradient is null is left out of the dict (what a
JAX user has: ``jax.grad`` gives every leaf a gradient, a frozen parameter is simply not in the
tree that is differentiated or clipped) and comes back as ``None``. Model jobs build the network
in plain ``jax.numpy`` (``nets.py``) and take ``jax.grad`` of the loss with respect to a params
dict. Each API is a ``GradientTransformation``: ``tx.update(grads, tx.init(grads))`` returns the
clipped tree, which is "the gradients after the call" (nothing happens in place, nothing returns a
norm). ``*.via_sgd`` (a suite-only name) is the training-loop form: ``optax.chain(clip,
optax.sgd(1.0))`` applied with ``optax.apply_updates`` to zero parameters, read back as ``-p``.
A failure while building or differentiating the network is reported as ``raised``.
Compiled mode (docs/modes.md): the same call traced and compiled by ``jax.jit`` (the arguments
closed over as constants, the gradient tree traced), as a user's jitted training step runs it.
"""

from __future__ import annotations

import jax
import optax

from . import nets
from .tensors import DTYPES, array, numpy, tensor_args


def _transform(tx, tree):
    updates, _ = tx.update(tree, tx.init(tree))
    return updates


def _via_sgd(clip):
    """``optax.chain(clip, optax.sgd(1.0))`` on zero parameters: the clipped gradient is ``-p``."""
    def call(tree, args):
        tx = optax.chain(clip(**args), optax.sgd(learning_rate=1.0))
        zeros = jax.tree.map(lambda g: g * 0, tree)  # parameters of the gradients' dtypes and shapes
        updates, _ = tx.update(tree, tx.init(zeros), zeros)
        new = optax.apply_updates(zeros, updates)
        return jax.tree.map(lambda p: -p, new), None
    return call


APIS = {
    "optax.clip_by_global_norm": lambda tree, args: (_transform(optax.clip_by_global_norm(**args), tree), None),
    "optax.clip": lambda tree, args: (_transform(optax.clip(**args), tree), None),
    "optax.clip_by_block_rms": lambda tree, args: (_transform(optax.clip_by_block_rms(**args), tree), None),
    "optax.clip_by_global_norm.via_sgd": _via_sgd(optax.clip_by_global_norm),
    # the norm alone: the gradients stay as they are
    "optax.tree.norm": lambda tree, args: (tree, optax.tree.norm(tree, **args)),
}


def _model_grads(model: dict, dtype):
    params = nets.params(model, dtype)
    inputs = array(model["inputs"], dtype)
    targets = None if model.get("targets") is None else array(model["targets"], dtype)
    grads = jax.grad(nets.loss_fn(model))(params, inputs, targets)
    return list(params), grads


class NotCompiled(RuntimeError):
    """The jitted call ran on concrete arrays: jit was disabled, so it ran eagerly."""


def _jitted(call, given, args):
    """``call(given, args)`` inside ``jax.jit``, checked to have run on tracers: under
    ``jax.disable_jit()`` (or JAX_DISABLE_JIT=1) jit runs the Python eagerly, which is not a
    compiled cell."""
    eager = []

    def traced(t):
        eager.extend(leaf for leaf in jax.tree.leaves(t) if not isinstance(leaf, jax.core.Tracer))
        return call(t, args)

    out = jax.jit(traced)(given)
    if eager or jax.config.jax_disable_jit:
        raise NotCompiled("jax.jit ran the call eagerly (jit is disabled)")
    return out


def run(job: dict) -> dict:
    call = APIS[job["api"]]
    dtype = DTYPES[job["dtype"]]
    if "model" in job:
        try:
            names, tree = _model_grads(job["model"], dtype)
        except Exception as e:  # no kernel for this dtype, say: reported for the registry to declare
            return {"grads": {}, "raw_grads": None, "returned": None,
                    "raised": {"type": type(e).__name__, "message": str(e)}}
        raw = {n: numpy(tree[n]) for n in names}
    else:
        names = [p["name"] for p in job["params"]]
        tree = {p["name"]: array(p["grad"], DTYPES[p.get("dtype", job["dtype"])])
                for p in job["params"] if p["grad"] is not None}
        raw = None
    single = job.get("form") == "tensor"  # the one gradient as a bare array (a one-leaf pytree)
    given = next(iter(tree.values())) if single else tree
    try:
        args = tensor_args(job["args"])
        if job.get("mode") == "compiled":  # docs/modes.md: the call inside jax.jit, as users run optax
            out, returned = _jitted(call, given, args)
        else:
            out, returned = call(given, args)
        out = jax.block_until_ready(out)
    except Exception as e:  # the API under test raised: a behaviour, reported to the comparator
        return {"grads": {n: numpy(tree.get(n)) for n in names}, "raw_grads": raw,
                "returned": None, "raised": {"type": type(e).__name__, "message": str(e)}}
    if single:
        out = {next(iter(tree)): out}
    if returned is not None:
        returned = float(numpy(returned))
    return {"grads": {n: numpy(out.get(n)) for n in names}, "raw_grads": raw,
            "returned": returned, "raised": None}
