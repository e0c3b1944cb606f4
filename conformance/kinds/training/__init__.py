"""Training-step cases (``step:``): the loop around the clip (loss scaling, micro-batches,
parameter groups, the optimizer step), compared with the training oracle (docs/training.md)."""
