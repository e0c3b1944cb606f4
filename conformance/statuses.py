"""The statuses of a cell, written once (docs/ARCHITECTURE.md, ../shared/design.md):

- ``match``: the target agrees with the oracle of the source API;
- ``known``: it does not, but a declared difference's variant reproduces it;
- ``mismatch``: neither: a new, unexplained difference (fails the run and the pytest item);
- ``error``: it raised or crashed where a value was expected (fails likewise);
- ``unstable``: its numbers change from run to run (``run --repeat``; fails likewise);
- ``unsupported``: the framework declares no such API/argument/dtype here;
- ``skipped``: the backend is not installed, or no GPU.
"""

STATUSES = ("match", "known", "mismatch", "error", "unstable", "unsupported", "skipped")
#: the statuses that fail a run (exit 1) and a pytest item
PROBLEMS = ("mismatch", "error", "unstable")
#: the statuses whose record carries its own reproduction snippet
REPRODUCED = ("mismatch", "error", "known")
