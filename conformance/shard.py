"""One machine's share of a run: ``--shard K/N`` (CLI and pytest plugin).

Cells go to shards a whole case at a time (the targets of one case share its inputs and oracle
answers, cached per runner), each case to the shard with the least estimated work so far, the
dearest cases first (greedy longest-processing-time; deterministic: ties go by case and shard
order, never by chance). A case's estimated work is the sum of its cells' costs: the measured
milliseconds per cell of its framework in its mode (``Framework.cell_ms``), or of its kind where
the kind states one (``Kind.cell_ms``: distributed cells), so a shard holding compiled torch cells
(hundreds of ms each) gets fewer of them than of eager ones (a few ms).
Every cell lands in exactly one shard, so the shards' results merged (``conformance report
a.json b.json``) are the whole run's. Standard library only.
"""

from __future__ import annotations

import re

from . import frameworks

#: milliseconds per cell where a framework states none (a framework folder new to the suite)
DEFAULT_MS = 20.0


def parse(spec: str) -> tuple:
    """``"2/3"`` -> ``(2, 3)``; a ValueError that says what is wrong otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ValueError(f"--shard {spec!r}: write K/N with 1 <= K <= N (e.g. 2/4)")
    return int(m.group(1)), int(m.group(2))


def cell_cost(framework: str, mode: str) -> float:
    fw = frameworks.discover().get(framework)
    return float((fw.cell_ms if fw is not None else {}).get(mode, DEFAULT_MS))


def cost_of(cell) -> float:
    """A cell's estimated milliseconds: its kind's where the kind states one (a distributed cell
    runs on a rank group: hundreds of ms whatever the framework), else its framework's in its mode."""
    kind_ms = cell.kind.cell_ms
    return float(kind_ms) if kind_ms is not None else cell_cost(cell.framework, cell.mode)


def assign(groups: dict, n: int) -> dict:
    """``{group: cost}`` -> ``{group: shard index 0..n-1}``, the dearest groups first, each to
    the least loaded shard."""
    loads = [0.0] * n
    out = {}
    for g, cost in sorted(groups.items(), key=lambda item: (-item[1], item[0])):
        i = min(range(n), key=lambda s: (loads[s], s))
        out[g] = i
        loads[i] += cost
    return out


def select(cells: list, k: int, n: int, key=lambda c: (str(c.source.path), c.case.id),
           cost=cost_of) -> list:
    """The cells of shard ``k`` of ``n`` (1-based), in their planned order."""
    groups: dict = {}
    for c in cells:
        groups[key(c)] = groups.get(key(c), 0.0) + cost(c)
    shard = assign(groups, n)
    return [c for c in cells if shard[key(c)] == k - 1]
