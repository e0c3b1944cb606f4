"""The torch framework: everything the suite needs to run PyTorch, in one folder.

``worker.py`` (imported only in a torch worker process) runs a cell's job with the real torch
APIs, one module per kind (``clipping.py``, ``derivation.py``, ``training.py``) over what they
share (``tensors.py``: tensors in and out, dtypes, device; ``nets.py``: network layers and
losses); ``snippets.py`` writes copy-paste reproductions (text only). This file imports no
framework: the main process reads ``FRAMEWORK`` when it discovers the frameworks.
"""

from ..base import Framework

FRAMEWORK = Framework(name="torch", package="torch", title="PyTorch", pip="torch", tox_extras=("torch",),
                      order=0,  # the first column of the mapping tables: the usual source
                      compiled=("clipping",),  # torch.compile(fullgraph=True): compiled.py
                      # ms per cell, measured: the bundled run (eager), cases/matrix+sweeps+seeds
                      # --mode compiled (docs/modes.md); what --shard balances
                      cell_ms={"eager": 16.5, "compiled": 307.0})
