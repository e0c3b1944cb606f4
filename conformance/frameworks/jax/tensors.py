"""What the JAX kinds share (worker side only): float64 switched on, the dtype table, the device,
and arrays in (from the job's numpy arrays) and out (float64 numpy for the result)."""

from __future__ import annotations

from typing import Optional

import jax

# float64 needs jax_enable_x64 (without it jnp.float64 arrays silently become float32): turned on
# at import, before any array exists, as a user who wants float64 does.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ...tensors import is_tensor_arg  # noqa: E402

DTYPES = {"float64": jnp.float64, "float32": jnp.float32,
          "float16": jnp.float16, "bfloat16": jnp.bfloat16}


def gpu_reason() -> Optional[str]:
    """None when jax has a GPU backend here, else jax's own reason."""
    try:
        jax.devices("gpu")
        return None
    except RuntimeError as e:
        return f"jax.devices('gpu') raised RuntimeError: {e}"


def on_device(name: str):
    """The context a job runs in: ``jax.default_device`` of the cell's device, so its arrays
    (made by ``array``, uncommitted, as ``jnp.asarray`` makes a user's) and every computation on
    them are on that device. Not ``jax.device_put(x, dev)``: a committed array makes eager ops
    compile twice (optax's norm compiled ``square`` once for the committed gradient and once
    more uncommitted, for every shape and dtype: 16 extra compilations, ~0.45 s, over the
    benchmark's 500 JAX cells)."""
    return jax.default_device(jax.devices("gpu" if name == "gpu" else "cpu")[0])


def array(arr, dtype):
    """A jax array of ``dtype`` on the default device (``on_device``) from a job's numpy array
    (integers stay int64)."""
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return jnp.asarray(a.astype(np.int64))
    # np.array, not ascontiguousarray: that one turns a 0-d gradient into shape [1]
    return jnp.asarray(np.array(a, dtype=np.float64), dtype=dtype)


def numpy(x) -> Optional[np.ndarray]:
    """float64 numpy of a jax array (bfloat16 widened exactly through float32)."""
    if x is None:
        return None
    if x.dtype == jnp.bfloat16:
        x = x.astype(jnp.float32)
    return np.array(x, dtype=np.float64)


def tensor_args(args: dict) -> dict:
    """A job's arguments with each tensor argument (``{"tensor": 0.4, "dtype": "float64"}``,
    conformance.tensors) made a jax array of its dtype and shape."""
    return {k: array(np.asarray(v["tensor"], dtype=np.float64), DTYPES[v["dtype"]])
            if is_tensor_arg(v) else v for k, v in args.items()}
