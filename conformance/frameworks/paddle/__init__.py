"""Paddle (``paddlepaddle``), one folder: ``worker.py`` runs its clipping, derivation and
training jobs in a worker process (dygraph; it imports paddle), ``snippets.py`` writes its
reproduction snippets (text only), and the shared ``tensors.py`` / ``nets.py`` hold the tensors,
dtypes, device and network layers every kind uses. This file imports no framework."""

from ..base import Framework

FRAMEWORK = Framework(name="paddle", package="paddle", title="Paddle", pip="paddlepaddle",
                      tox_deps=("paddlepaddle",), order=2,
                      cell_ms={"eager": 6.4})  # measured on the bundled run; what --shard balances
