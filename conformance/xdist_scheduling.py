"""pytest-xdist work units for case files: every cell of one case goes to one xdist worker.

With xdist's default ``--dist load`` the cells of one case (its sweep points, dtypes and target
APIs) are dealt out item by item, so each xdist worker builds that case's inputs and oracle
answers again (``Runner.cached`` is per process): for the model-sized cases that is a 1e7-element
float64 oracle per worker. Here a case is one work unit, handed out by xdist's own
``LoadScopeScheduling`` (largest units first, a worker asks for more when two items are left):
a case's cells share one worker's cache and one framework worker, and cases still spread over
every xdist worker. The suite's own tests stay one unit each, as under ``--dist load``.

The plugin uses it for ``-n N`` when ``--dist`` is not given; ``--dist load`` (or any other
mode) is xdist's as it is. Imported only where xdist runs the session.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

CASE_SUFFIXES = (".yaml", ".yml")


def case_scope(nodeid: str) -> str:
    """The work unit of ``nodeid``: ``path::case-id`` for a case file's cell
    (``path::case-id[api-dtype-device]``) or error item, the node id itself for anything else."""
    path, sep, name = nodeid.partition("::")
    if not sep or not path.endswith(CASE_SUFFIXES):
        return nodeid
    return f"{path}::{name.partition('[')[0]}"


class CaseScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with ``case_scope`` as the scope."""

    def _split_scope(self, nodeid: str) -> str:  # xdist's documented extension point
        return case_scope(nodeid)
