"""Property-based cases: hypothesis draws gradients and clip arguments for every source API of
the registry, writes them as a case file (``conformance.casegen``), and runs that file through
the real pipeline on each selected backend. Every cell must be ``match``, ``known`` (a declared
difference's variant reproduces it) or ``unsupported`` (declared); a ``mismatch`` or ``error``
fails with the shrunk example printed as a ready-to-save case file plus each cell's diff.

Backends: those named with ``--backend`` (the plugin's option), else the comma-separated
``$CONFORMANCE_PROPERTY_BACKENDS``, else the frameworks this interpreter can import. So
``pytest tests/test_properties.py --backend mindspore`` checks MindSpore, in its own worker.
Examples per semantic: the hypothesis profile (``ci`` by default, ``HYPOTHESIS_PROFILE=dev`` for
more; see tests/conftest.py). ``--save-found DIR`` (or ``$CONFORMANCE_SAVE_FOUND``) also writes
each shrunk failing example to ``DIR/<id>.yaml``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from conformance import casegen, registry, tensors
from conformance.kinds.clipping import oracle as clipping
from conformance.frameworks import workers
from conformance.spec.load import parse_text

ROOT = Path(__file__).resolve().parents[1]  # tests.fake_backend lives in the repository
REGISTRY = registry.load()
DTYPES = ("float32", "float64", "float16", "bfloat16")  # the first is what shrinking prefers
NORM_TYPES = (2.0, 1.0, math.inf, 0.5, 1.5, 3.0, -math.inf, 0.0)
SPECIALS = ("nan", "inf", "-inf", "zero", "-zero", "subnormal", "-subnormal")


# --------------------------------------------------------------------------- strategies


def _special(name: str, dtype: str) -> float:
    tiny = tensors.finfo(dtype)["tiny"]
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "zero": 0.0, "-zero": -0.0,
            "subnormal": tiny / 4, "-subnormal": -tiny / 4}[name]


@st.composite
def tensor(draw, dtype: str):
    """One gradient: 0-d to 3-d (empty dimensions too), elements of magnitude ~10**e for one
    drawn e in [-8, 8], sometimes a few special values; rounded to ``dtype`` (float16 overflow
    becomes inf, tiny values flush to subnormals or zero, as a cast would)."""
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 4, 0]), max_size=3)))  # a list shrinks well
    size = int(np.prod(shape))
    exponent = draw(st.integers(-8, 8))
    mantissas = draw(st.lists(st.floats(-10.0, 10.0), min_size=size, max_size=size))
    a = np.array(mantissas, dtype=np.float64) * 10.0**exponent
    if size:
        for i, name in draw(st.lists(st.tuples(st.integers(0, size - 1), st.sampled_from(SPECIALS)),
                                     max_size=2)):
            a[i] = _special(name, dtype)
    return tensors.round_to(a.reshape(shape), dtype)


@st.composite
def grads(draw, dtype: str) -> dict:
    """1 to 4 parameters ``p0..p3``; one in eight has no gradient (``null``)."""
    n = draw(st.integers(1, 4))
    return {f"p{i}": (None if draw(st.integers(0, 7)) == 7 else draw(tensor(dtype))) for i in range(n)}


def magnitude(zero: bool = True):
    """A positive number m * 10**k, k in [-9, 9] (grads span 1e-8..1e8, so clipping is active
    about half the time); sometimes exactly 0."""
    m = st.builds(lambda m, k: float(m * 10.0**k), st.floats(1.0, 10.0, exclude_max=True), st.integers(-9, 9))
    return st.one_of(m, st.just(0.0)) if zero else m


#: One strategy per argument name a registered source API takes. Arguments not named here keep
#: their defaults (``foreach``, ``use_norm``: MindSpore accepts only None, ``group_name``, ...).
ARGS = {
    "max_norm": magnitude(zero=False),
    "clip_norm": magnitude(zero=False),
    "norm_type": st.sampled_from(NORM_TYPES),
    "error_if_nonfinite": st.booleans(),
    "clip_value": magnitude(),
    "max_delta": magnitude(),  # optax.clip: symmetric bounds [-max_delta, max_delta]
    "threshold": magnitude(),  # optax.clip_by_block_rms
    "total_norm": st.one_of(magnitude(zero=False), st.sampled_from([0.0, math.inf, math.nan])),
}
#: Value-clipping bounds, drawn together: (lower name, upper name, what an absent lower bound
#: means: "-upper" (Paddle's ClipGradByValue(max, min=None)) or "none" (no lower bound)).
BOUNDS = {"paddle.nn.ClipGradByValue": ("min", "max", "-upper"),
          "mindspore.ops.clip_by_value": ("clip_value_min", "clip_value_max", "none"),
          "tf.clip_by_value": ("clip_value_min", "clip_value_max", "none")}


@st.composite
def bounds(draw, api: str) -> dict:
    """Symmetric bounds half the time (what a one-bound mapping such as torch's clip_grad_value_
    needs), else lower <= 0 <= upper drawn apart, one of them possibly absent (never both;
    never one the API requires)."""
    lo_name, hi_name, absent = BOUNDS[api]
    params = REGISTRY.apis[api].params
    lo_required, hi_required = params[lo_name].required, params[hi_name].required
    if draw(st.booleans()):
        hi = draw(magnitude())
        return {hi_name: hi} if absent == "-upper" and draw(st.booleans()) else {lo_name: -hi, hi_name: hi}
    negative = magnitude().map(lambda v: -v)
    lo = draw(negative if lo_required else st.one_of(negative, st.none()))
    hi = draw(st.one_of(magnitude(), st.none()) if lo is not None and not hi_required else magnitude())
    return {k: v for k, v in ((lo_name, lo), (hi_name, hi)) if v is not None}


def symmetric(api: str, args: dict) -> bool:
    lo_name, hi_name, absent = BOUNDS[api]
    if hi_name not in args:
        return False
    if lo_name not in args:
        return absent == "-upper"
    return args[lo_name] == -args[hi_name]


@st.composite
def clip_args(draw, api: str, grads: dict, dtype: str) -> dict:
    params = REGISTRY.apis[api].params
    out = {}
    if api in BOUNDS:
        out.update(draw(bounds(api)))
    for name, p in params.items():
        if name in out or (api in BOUNDS and name in BOUNDS[api]):
            continue
        if name in ARGS:
            out[name] = draw(ARGS[name])
        elif p.required:
            raise AssertionError(f"no strategy for the required argument {name!r} of {api}: add one to ARGS")
    for name in ("max_norm", "clip_norm"):
        if name in out and draw(st.integers(0, 3)) == 0:
            out[name] = at_the_norm(grads, out.get("norm_type", 2.0), dtype)
    return out


def at_the_norm(grads: dict, norm_type: float, dtype: str) -> float:
    """The gradients' total norm rounded to ``dtype``: a threshold exactly at (or a rounding
    away from) the norm, where "scale if norm > max" and "scale by min(1, max / (norm + eps))"
    part ways; a random magnitude hardly ever lands there."""
    with np.errstate(all="ignore"):
        n = clipping.total_norm(list(grads.values()), norm_type)
    n = float(tensors.round_to(n, dtype))
    return n if math.isfinite(n) and n > 0 else 1.0


def _takes_both_bounds(mapping, lo: str, hi: str) -> bool:
    """Whether a mapping's argument translation reads both bounds (identity mappings do)."""
    if mapping.args is None:
        return True
    used = {rule if isinstance(rule, str) else rule.get("from") for rule in mapping.args.values()}
    return {lo, hi} <= used


@st.composite
def case_texts(draw, api: str) -> str:
    dtype = draw(st.sampled_from(DTYPES))
    gs = draw(grads(dtype))
    args = draw(clip_args(api, gs, dtype))
    targets = None
    if api in BOUNDS:
        # a mapping that translates one bound (torch's clip_grad_value_ takes one clip_value) is
        # declared for symmetric bounds only (its `notes:`); other bounds target the rest
        lo, hi, _ = BOUNDS[api]
        if not symmetric(api, args):
            targets = [m.target for m in REGISTRY.targets(api) if _takes_both_bounds(m, lo, hi)]
    return casegen.case_text(api=api, args=args, grads=gs, dtype=dtype, targets=targets)


# --------------------------------------------------------------------------- the property


def check_property(runner, backend: str, api: str, found: dict, **overrides):
    """The property for one (backend, source API), as a hypothesis test to call.

    ``found["text"]`` keeps the last failing case file: hypothesis replays the shrunk example
    last, so after a failure it is the minimal one.
    """

    @settings(**overrides)
    @given(text=case_texts(api))
    def prop(text):
        records = casegen.run_text(text, runner, backends={backend})
        for r in records:
            event(f"{r['api']}: {r['status']}" + (f" ({r['difference']})" if r.get("difference") else ""))
        bad = casegen.failures(records)
        if bad:
            found["text"] = text
            raise AssertionError(casegen.failure_message(text, bad))

    return prop


def save_found(found: dict, directory) -> None:
    if directory and found.get("text"):
        cid = parse_text(found["text"]).cases[0].case.id
        path = Path(directory) / f"{cid}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(found["text"], encoding="utf-8")
        print(f"saved the shrunk failing case as {path}", file=sys.stderr)


def _pairs():
    """(backend, source API) for every clipping source with a runnable target on that backend.

    Derivation and training-step sources take a function or a model, not injected gradients:
    their generated tests live in test_derivation_* and test_training_*."""
    out = []
    for backend in workers():
        for source in REGISTRY.sources():
            if REGISTRY.apis[source].kind != "clipping":
                continue
            if any(m.backend == backend for m in REGISTRY.targets(source)):
                out.append(pytest.param(backend, source, id=f"{backend}-{source}"))
    return out


@pytest.mark.framework
@pytest.mark.parametrize("backend, api", _pairs())
def test_generated_cases(backend, api, property_backends, conformance_runner, save_found_dir):
    reason = property_backends.get(backend, f"{backend} not selected for property tests: pass --backend {backend}")
    if reason:
        pytest.skip(reason)
    found: dict = {}
    try:
        check_property(conformance_runner, backend, api, found)()
    finally:
        save_found(found, save_found_dir)


# --------------------------------------------------------------------------- the property can fail


def _wrong_registry():
    """torch's clip_grad_norm_ mapped to ``fake.echo`` (tests/fake_backend.py), which returns the
    gradients unclipped: wrong wherever clipping should act, and declared nowhere."""
    from conformance.registry import Api, Mapping, Registry

    apis = dict(REGISTRY.apis)
    apis["fake.echo"] = Api(name="fake.echo", framework="torch", signature="fake.echo(grads)")
    return Registry(apis, [Mapping(source="torch.nn.utils.clip_grad_norm_", target="fake.echo",
                                   category="identity")])


def test_property_fails_on_a_wrong_backend_with_a_case_file(tmp_path):
    from conformance.runner import Runner
    from conformance.worker import WorkerPool

    pool = WorkerPool({"fake": "tests.fake_backend"}, {"fake": sys.executable}, paths=[str(ROOT)])
    try:
        runner = Runner(_wrong_registry(), pool)
        found: dict = {}
        prop = check_property(runner, "fake", "torch.nn.utils.clip_grad_norm_", found,
                              max_examples=200, derandomize=True, database=None,
                              report_multiple_bugs=False, deadline=None,
                              phases=[p for p in Phase if p != Phase.explain])
        with pytest.raises(AssertionError) as info:
            prop()
        message = str(info.value)
        assert "MISMATCH: fake.echo (fake, " in message
        assert "cell(s) neither match nor are explained" in message
        text = casegen.case_from_message(message)
        assert text == found["text"]
        loaded = parse_text(text, "found.yaml")
        assert not loaded.errors and len(loaded.cases) == 1
        case = loaded.cases[0].case
        assert case.clip.api == "torch.nn.utils.clip_grad_norm_"
        assert message.count(f"cases/found/{case.id}.yaml") == 1
        # the printed file reproduces the failure on its own
        again = casegen.run_text(text, runner, backends={"fake"}, path="found.yaml")
        assert [r["status"] for r in again] == ["mismatch"]
        # shrunk: a couple of scalars are enough to show unclipped gradients
        assert sum(np.size(g) for g in case.grads.values() if g is not None) <= 2
        save_found(found, tmp_path)
        assert (tmp_path / f"{case.id}.yaml").read_text() == text
    finally:
        pool.close()
