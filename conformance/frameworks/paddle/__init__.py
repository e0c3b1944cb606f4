"""Paddle (``paddlepaddle``), one folder: ``worker.py`` runs its clipping, derivation and
training jobs in a worker process (dygraph, and clipping compiled too: ``compiled.py``,
``paddle.jit.to_static(full_graph=True)``; it imports paddle), ``snippets.py`` writes its
reproduction snippets (text only), and the shared ``tensors.py`` / ``nets.py`` hold the tensors,
dtypes, device and network layers every kind uses. This file imports no framework."""

from ..base import Framework

FRAMEWORK = Framework(name="paddle", package="paddle", title="Paddle", pip="paddlepaddle",
                      tox_deps=("paddlepaddle",), order=2,
                      compiled=("clipping",),  # paddle.jit.to_static(full_graph=True): compiled.py
                      # measured on `run cases --mode all` (12,068 eager, 11,988 compiled cells,
                      # docs/modes.md); what --shard balances
                      cell_ms={"eager": 7.3, "compiled": 37.8})
