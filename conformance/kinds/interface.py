"""The one small interface every kind of case implements (see ``conformance/kinds/__init__.py``).

A kind has two halves, imported apart: its :class:`Block` (what it adds to a case file: the case
model is built from the blocks) and its :class:`Kind` (how one of its cells runs: the runner
calls it). Standard library only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Block:
    """What a kind adds to the case file.

    ``fields``: case fields it adds, ``{name: (annotation, default)}``. ``inputs``: the case
    fields its cells take their numbers from (exactly one input field is given per case).
    ``marks``: fields whose presence makes a case this kind (``()``: the kind of a case that
    gives no other kind's mark; one kind is that default). ``check(case)``: problems with the
    whole case as ``[(location, text)]`` (a location is a tuple of keys, ``()`` the document).
    """

    fields: dict = field(default_factory=dict)
    inputs: tuple = ()
    marks: tuple = ()
    check: Callable[[Any], list] = lambda case: []


@dataclass
class Prepared:
    """One cell made ready by its kind: the worker ``job``, the source's oracle result
    ``want``, the :class:`~conformance.classify.Hooks` the one classification rule calls,
    a ``snippet()`` that writes the copy-paste reproduction, and ``inputs()`` (a summary of
    the case's input numbers for the report; None where a kind has none)."""

    job: dict
    want: Any
    hooks: Any
    snippet: Callable[[], str]
    inputs: Optional[Callable[[], dict]] = None


class Kind(ABC):
    """How the cells of one kind run. ``name`` is the kind's folder; ``oracle`` its oracle
    module (the registry resolves an API's ``oracle.fn`` there)."""

    name: str
    oracle: Any
    #: variant knobs this kind applies itself before it calls the oracle function (beyond that
    #: function's own parameters; the registry accepts them in a difference's ``variant``)
    knobs: tuple = ()
    #: seconds a cell of this kind may spend, beyond the runner's timeout, starting what it runs
    #: on inside the worker (a distributed cell's rank group, whose start limit its job carries)
    start_time: float = 0.0
    #: measured milliseconds per cell where this kind's cost dwarfs its framework's
    #: (``Framework.cell_ms``); what ``--shard`` and a backend split across workers balance
    cell_ms: Optional[float] = None

    def target_args(self, registry, mapping, args: dict, case) -> dict:
        """The source call's arguments in the target API's terms (default: the mapping's
        declarative rules). Raises ValueError when the target cannot express the call."""
        return registry.target_args(mapping, args)

    def api_problems(self, api) -> list:
        """Problems with a registry API of this kind beyond the registry's own checks, as
        ``[(field, text)]`` (the registry names the file and line)."""
        return []

    def facts(self, cell) -> dict:
        """What registry conditions may test about a cell of this kind, beyond the facts every
        cell offers (``plan.Cell.facts``)."""
        return {}

    @abstractmethod
    def prepare(self, runner, cell) -> Prepared:
        """Materialise the cell's inputs, ask the oracle, build the job (``runner.cached``
        keeps what the targets of one case share)."""
