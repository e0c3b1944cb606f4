"""The float64 numpy oracle: reference network gradients and clipping semantics.

``network``: forward + hand-written backward of the layer/loss set. ``clipping``: one pure
function per clipping semantic, variant knobs as keyword-only arguments. numpy and stdlib only.
"""

from conformance.oracle.clipping import (
    OracleResult,
    clip_grad_norm,
    clip_grad_value,
    clip_grads_with_norm,
    get_total_norm,
    total_norm,
    vector_norm,
)
from conformance.oracle.network import NetworkResult, finite_difference_grads, forward_backward, param_names

__all__ = [
    "NetworkResult",
    "OracleResult",
    "clip_grad_norm",
    "clip_grad_value",
    "clip_grads_with_norm",
    "finite_difference_grads",
    "forward_backward",
    "get_total_norm",
    "param_names",
    "total_norm",
    "vector_norm",
]
