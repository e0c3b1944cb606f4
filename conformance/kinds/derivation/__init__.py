"""Gradient-derivation cases (``function:``): torch.autograd.grad, mindspore.grad, paddle.grad,
Tensor.backward, ... compared on a function written as data (docs/derivation.md)."""
