"""Clipping cases (``grads:`` or ``model:``): a clipping API applied to injected gradients or
to a network's gradients, compared with the clipping oracle (docs/matrix.md)."""
