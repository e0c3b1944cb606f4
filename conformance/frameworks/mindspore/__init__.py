"""The MindSpore framework folder: everything the suite needs to run MindSpore's APIs.

``worker.py`` (worker process only: imports mindspore) dispatches a job to ``clipping.py``,
``derivation.py`` or ``training.py``, which share ``tensors.py`` (tensors in and out, dtypes,
device, errors) and ``nets.py`` (network layers and losses); ``snippets.py`` writes the
copy-paste reproductions (text only); ``registry/*.yaml`` lists the APIs and mappings.
"""

from ..base import Framework

# MindSpore needs numpy<2. CONFORMANCE_TEST_PYTHON lets the worker tests, run from this numpy-1
# env, talk to the torch env's interpreter (numpy 2.x).
FRAMEWORK = Framework(
    name="mindspore",
    package="mindspore",
    title="MindSpore",
    pip="mindspore",
    tox_deps=("numpy<2", "mindspore"),
    tox_setenv={"CONFORMANCE_TEST_PYTHON": "{toxworkdir}{/}torch{/}bin{/}python"},
    order=1,
    compiled=("clipping",),  # mindspore.jit(fullgraph=True): compiled.py
    cell_ms={"eager": 15.7, "compiled": 74.0},  # measured (docs/modes.md); what --shard balances
    # A compiled worker slows down as it ages: MindSpore keeps what it compiled although the
    # suite drops its jitted functions (compiled.py). Measured on the bundled cases: RSS 0.5 GB
    # -> 3.7 GB over 4,400 compiled cells, and the same 515 cells took 169 ms (median) in that
    # worker against 75 ms in a fresh one; a full run's worker once timed out (120 s) on a cell
    # that takes 0.4 s fresh. A fresh process every 1,000 cells costs one start (docs/modes.md).
    recycle_after={"compiled": 1000},
)
