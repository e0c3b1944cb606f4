"""The contract between the registry and the framework folders: for every framework, the APIs
the registry maps onto it, the APIs its worker implements and the APIs its snippet writers
cover are the same set, kind by kind; and every knob a registry variant sets is one its oracle
takes, with a value the oracle accepts."""

from __future__ import annotations


import numpy as np
import pytest

from conformance import frameworks, kinds, registry
from conformance.kinds.clipping.cell import oracle_call
from conformance.worker import Worker, WorkerError

REG = registry.load()
NAMES = list(frameworks.discover())


def _targets(name: str) -> dict:
    """kind -> the registry APIs of framework ``name`` that some mapping targets."""
    out = {}
    for m in REG.mappings:
        if m.category != "missing" and m.backend == name:
            out.setdefault(REG.apis[m.target].kind, set()).add(m.target)
    return out


def test_every_framework_of_the_registry_has_a_folder():
    assert {api.framework for api in REG.apis.values()} <= set(NAMES)
    assert set(REG.frameworks) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_snippet_writers_cover_exactly_the_registry_targets(name):
    snippets = frameworks.part(name, "snippets").SNIPPETS
    assert {k: set(v) for k, v in snippets.items() if v} == _targets(name)
    assert set(snippets) <= set(kinds.names())


@pytest.mark.framework
@pytest.mark.parametrize("name", NAMES)
def test_the_worker_implements_exactly_the_registry_targets(name):
    python = frameworks.default_python(name)
    if python is None:
        pytest.skip(f"no interpreter with {name} here")
    worker = Worker(name, frameworks.discover()[name].worker, "cpu", python=python)
    try:
        apis = worker.hello["info"]["apis"]
    except WorkerError as e:
        pytest.fail(f"{name} worker did not start: {e}")
    finally:
        worker.close()
    assert {k: set(v) for k, v in apis.items() if v} == _targets(name)


def _required(api) -> dict:
    """A number for every argument the oracle takes that has no value of its own (a required
    one, or a bound that defaults to None)."""
    return {k: 1.0 for k, p in api.params.items() if k in api.oracle.args.values() and (p.required or p.default is None)}


@pytest.mark.parametrize("mapping", [m for m in REG.mappings if (m.differences or m.numerics)
                                     and REG.apis[m.source].kind == "clipping"],
                         ids=lambda m: f"{m.source}->{m.target}")
def test_every_clipping_variant_runs_on_its_source_oracle(mapping):
    """Each declared difference's knobs, applied to the source API's oracle on small gradients:
    no knob the function refuses (TypeError) and no value it rejects (ValueError)."""
    source = REG.apis[mapping.source]
    args, problems = REG.source_args(mapping.source, _required(source))
    assert not problems
    grads = [np.array([3.0, -4.0]), np.array([[1.0, 2.0], [0.5, -1.0]]), None]
    for d in mapping.differences:
        result = oracle_call(source, args, grads, "float32", d.variant)
        assert result.raises or result.grads is not None, d.id
    for n in mapping.numerics:  # alone and on top of every difference, as classify tries them
        for d in [None, *mapping.differences]:
            result = oracle_call(source, args, grads, "float32", {**(d.variant if d else {}), **n.variant})
            assert result.raises or result.grads is not None, (n.id, d and d.id)
