"""The distributed kind: an injected-gradient clipping call made on every rank of a real
multi-process job, each rank holding its shard of the gradients (docs/distributed.md)."""
