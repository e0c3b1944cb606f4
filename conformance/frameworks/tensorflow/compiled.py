"""TensorFlow's compiled mode (worker side only; docs/modes.md): a clipping call inside
``tf.function``, as a Keras ``fit`` or a user's ``@tf.function`` training step runs it: graph
mode, no XLA (``jit_compile`` is off by default, and this is what users get on CPU).

Compiled means compiled: ``tf.config.run_functions_eagerly(True)`` would make every
``tf.function`` run its Python eagerly, so a worker that finds it on refuses the cell
(``NotCompiled``); and a function's first call must trace (its own tracing count goes up), else
no graph was built.

Pure calls are cached, one ``tf.function`` per (API, arguments): it retraces per gradient
shapes and dtypes itself (its own cache, keyed by the input signature), and the cache is bounded
(``KEEP``). A Keras optimizer step closes over its own variables, so it gets a fresh function.
"""

from __future__ import annotations

import tensorflow as tf

KEEP = 64
_seen: dict = {}  # (api, args) -> tf.function


class NotCompiled(RuntimeError):
    """The compiled call ran without tracing a graph: it would have been eager."""


def run(name: str, function, *given):
    """``function(*given)`` for a ``tf.function``, checked to have traced a graph if it never had."""
    if tf.config.functions_run_eagerly():
        raise NotCompiled("tf.config.run_functions_eagerly(True) is on: tf.function would run eagerly")
    first = function.experimental_get_tracing_count() == 0
    out = function(*given)
    if first and function.experimental_get_tracing_count() == 0:
        raise NotCompiled(f"tf.function of {name} traced no graph: the call ran eagerly")
    return out


def cached(api: str, fn, args: dict):
    """``lambda grads: fn(grads, args)`` as a cached ``tf.function``."""
    key = api, tuple(sorted((k, repr(v)) for k, v in args.items()))
    function = _seen.get(key)
    if function is None:
        if len(_seen) >= KEEP:
            _seen.clear()
        function = _seen[key] = tf.function(lambda gs: fn(gs, args))
    return lambda grads: run(api, function, grads)


def fresh(name: str, fn):
    """``fn`` as a new ``tf.function`` (it closes over per-call state, so it is not cached)."""
    function = tf.function(fn)
    return lambda *given: run(name, function, *given)
