"""What every torch kind shares (worker side only): the dtype table, the device, and tensors in
(from the job's numpy arrays) and out (float64 numpy for the result)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from ...tensors import is_tensor_arg

DTYPES = {"float64": torch.float64, "float32": torch.float32,
          "float16": torch.float16, "bfloat16": torch.bfloat16}


def device(name: str) -> torch.device:
    return torch.device("cuda" if name == "gpu" else "cpu")


def tensor(arr, dtype, device) -> torch.Tensor:
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return torch.from_numpy(a.astype(np.int64)).to(device)
    # np.array, not ascontiguousarray: that one turns a 0-d gradient into shape [1]
    return torch.from_numpy(np.array(a, dtype=np.float64, order="C")).to(device=device, dtype=dtype)


def numpy(t) -> Optional[np.ndarray]:
    # copy: for a float64 CPU tensor .to() is a no-op and .numpy() shares memory, so an
    # in-place clip would rewrite the "before clipping" gradients read earlier
    return None if t is None else t.detach().to("cpu", torch.float64).numpy().copy()


def tensor_args(args: dict, device) -> dict:
    """A job's arguments with each tensor argument (``{"tensor": 0.4, "dtype": "float64"}``,
    conformance.tensors) made a torch tensor of its dtype and shape."""
    return {k: tensor(np.asarray(v["tensor"], dtype=np.float64), DTYPES[v["dtype"]], device)
            if is_tensor_arg(v) else v for k, v in args.items()}
