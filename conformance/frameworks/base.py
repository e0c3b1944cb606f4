"""What a framework folder declares about itself (``conformance/frameworks/<name>/__init__.py``
defines ``FRAMEWORK``). Standard library only: the main process, tox generation and every
worker import it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Framework:
    """One framework the suite can run.

    ``name``: its folder and backend name, the first component of its API names
    (``torch.nn.utils.clip_grad_norm_``). ``package``: the importable package that says it is
    installed. ``title``: how the report names it. ``pip``: what a user installs
    (``paddlepaddle``, not ``paddle``). ``tox_deps`` / ``tox_extras``: its tox environment's
    dependencies beyond the suite's, ``tox_setenv`` its variables (generated into tox.ini).
    ``order``: where the report's mapping tables put its column (the seeds' PyTorch | MindSpore |
    Paddle; frameworks of equal order by name). ``compiled``: the kinds it also runs compiled.

    By convention the folder also holds ``worker.py`` (imported in the worker process only:
    ``info(device)``, ``run(job)``, ``APIS``), ``snippets.py`` (``SNIPPETS[kind][api]``, text
    only) and ``registry/*.yaml`` (its APIs and the mappings that target them).
    """

    name: str
    package: str
    title: str
    pip: str
    tox_deps: tuple = ()
    tox_extras: tuple = ()
    tox_setenv: dict = field(default_factory=dict)
    order: int = 100
    #: the kinds whose jobs its worker runs compiled too (``job["mode"] == "compiled"``:
    #: docs/modes.md); a kind not listed has eager cells only
    compiled: tuple = ()
    #: first components of its API names besides ``name`` (``tf`` for tensorflow, ``optax`` for
    #: jax): ``tf.clip_by_global_norm`` is a TensorFlow API as users write it
    prefixes: tuple = ()
    #: measured milliseconds per cell by mode, what ``--shard`` balances (conformance/shard.py)
    cell_ms: dict = field(default_factory=dict)
    #: by mode: the cells after which its worker process is replaced by a fresh one, for a
    #: framework whose process state grows with every cell (the reason is written beside it)
    recycle_after: dict = field(default_factory=dict)

    @property
    def worker(self) -> str:
        """The module a worker of this framework runs (``python -m conformance.worker_main``)."""
        return f"conformance.frameworks.{self.name}.worker"


def api_tables(kinds: dict) -> dict:
    """``{kind: {api name: function}}`` from a worker's ``{kind: module with APIS}``."""
    return {kind: module.APIS for kind, module in kinds.items()}


def dispatch(name: str, kinds: dict, job: dict) -> dict:
    """Run ``job`` with the module of its kind (``kinds``: ``{kind: module}`` whose ``APIS``
    table holds the job's API, and whose ``run(job)`` runs it). An unknown kind or API is a
    runner error (raised), never a behaviour of the framework."""
    module = kinds.get(job["kind"])
    if module is None:
        raise ValueError(f"unknown job kind {job['kind']!r} (known: {', '.join(kinds)})")
    if job["api"] not in module.APIS:
        raise NotImplementedError(f"the {name} backend has no {job['kind']} API {job['api']}")
    return module.run(job)
