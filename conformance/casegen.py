"""Generated cases: gradients + a clip call -> case-file YAML text, run as the real pipeline runs it.

The property tests (``tests/test_properties.py``) draw gradients and arguments with hypothesis,
render them with ``case_text`` and run *that text* with ``run_text``: it is parsed with
``spec.parse_text``, planned with ``plan.plan`` and each cell goes through the real
``runner.Runner`` and its worker pool. So a failing example is a case file by construction, and
``failure_message`` prints it ready to save as ``cases/found/<id>.yaml``.

Numbers are written so that the file round-trips exactly: every float with ``repr`` precision
(17 significant digits at most, always with a dot before an exponent, because PyYAML's YAML 1.1
resolver reads ``1e-08`` as a string), ``.nan``/``.inf``/``-.inf`` for the non-finite ones.
A tensor whose shape a nested list cannot carry (an empty dimension before the last one, say
``[0, 3]``) is written as ``{fill: 0.0, shape: [0, 3]}``: it has no elements, so nothing is lost.

Standard library and numpy only (yaml is read back by ``spec``, never needed to write).
"""

from __future__ import annotations

import hashlib
import math
from typing import Optional

import numpy as np

from .plan import plan
from .pytest_plugin import format_failure
from .spec.load import parse_text

#: Statuses a property accepts: everything a declaration explains. ``mismatch`` and ``error``
#: fail (``skipped``: the backend or device is not there, nothing was checked).
ACCEPTED = ("match", "known", "unsupported", "skipped")

#: The file name ``run_text`` gives generated cases (the runner keys its caches on path + id,
#: and a generated id is a hash of the content, so two examples never share a cache entry).
GENERATED_PATH = "<generated>"


# --------------------------------------------------------------------------- writing YAML


def format_float(x: float) -> str:
    """A YAML 1.1 float literal that PyYAML's SafeLoader reads back as exactly ``x``."""
    x = float(x)
    if math.isnan(x):
        return ".nan"
    if math.isinf(x):
        return ".inf" if x > 0 else "-.inf"
    s = repr(x)  # shortest string that round-trips (Python >= 3.1)
    mantissa, e, exponent = s.partition("e")
    if "." not in mantissa:  # "1e-08" -> "1.0e-08": YAML 1.1 wants a dot in a float
        mantissa += ".0"
    if e and exponent[0] not in "+-":  # repr always signs the exponent; be safe anyway
        exponent = "+" + exponent
    return mantissa + (("e" + exponent) if e else "")


def format_scalar(v) -> str:
    """A flow-style YAML scalar for an argument value (bool, None, number or plain string)."""
    if v is None:
        return "null"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return format_float(float(v))
    if isinstance(v, str):
        return _quote(v)
    raise TypeError(f"cannot write {type(v).__name__} {v!r} as a case-file value")


def _quote(s: str) -> str:
    """A double-quoted YAML string (JSON escaping is valid YAML)."""
    import json

    return json.dumps(s)


def _nested(a: np.ndarray) -> str:
    if a.ndim == 0:
        return format_float(a.item())
    return "[" + ", ".join(_nested(x) for x in a) + "]"


def _list_keeps_shape(shape) -> bool:
    """Whether a nested list reads back with this shape: no empty dimension before the last."""
    return all(d > 0 for d in shape[:-1])


def format_tensor(a: Optional[np.ndarray]) -> str:
    """``null``, a scalar (0-d), a nested list, or a ``fill`` generator for shapes lists lose."""
    if a is None:
        return "null"
    a = np.asarray(a, dtype=np.float64)
    if not _list_keeps_shape(a.shape):
        return "{fill: 0.0, shape: [" + ", ".join(str(d) for d in a.shape) + "]}"
    return _nested(a)


def format_mapping(d: dict) -> str:
    return "{" + ", ".join(f"{k}: {format_scalar(v)}" for k, v in d.items()) + "}"


def case_id(body: str, prefix: str = "found") -> str:
    """A stable id from the case's content: the same example always gets the same id."""
    return f"{prefix}-{hashlib.sha256(body.encode()).hexdigest()[:12]}"


def case_text(*, api: str, args: dict, grads: dict, dtype: str, devices=("cpu",),
              title: Optional[str] = None, source: str = "hypothesis (tests/test_properties.py)",
              tags=("generated",), targets=None, id: Optional[str] = None) -> str:
    """The case file for one generated example (one dtype, injected gradients).

    ``grads`` maps parameter names to float64 arrays (already rounded to ``dtype``, so the
    file holds exactly the numbers every framework receives) or None (no gradient).
    ``targets``: restrict the case to these target APIs (default: every mapped one).
    """
    body = [
        f"dtypes: [{dtype}]",
        f"devices: [{', '.join(devices)}]",
        "grads:",
        *(f"  {name}: {format_tensor(g)}" for name, g in grads.items()),
        "clip:",
        f"  api: {api}",
        f"  args: {format_mapping(args)}",
    ]
    if targets is not None:
        body.append(f"targets: [{', '.join(targets)}]")
    text = "\n".join(body) + "\n"
    cid = id or case_id(text)
    shapes = ", ".join("none" if g is None else "x".join(map(str, np.shape(g))) or "0-d"
                       for g in grads.values())
    head = [
        f"id: {cid}",
        f"title: {_quote(title or f'{api} on {dtype} gradients of shapes {shapes}')}",
        f"source: {_quote(source)}",
        f"tags: [{', '.join(tags)}]",
    ]
    return "\n".join(head) + "\n" + text


# --------------------------------------------------------------------------- running the text


def run_text(text: str, runner, *, backends: set, device: str = "cpu",
             path: str = GENERATED_PATH) -> list[dict]:
    """Parse, plan and run ``text`` exactly as ``conformance run`` would; one record per cell.

    A text that does not parse or plan raises ``ValueError`` with the ``path:line`` errors: a
    generator that writes an invalid case is a bug of the generator, never a pass.
    """
    loaded = parse_text(text, path)
    p = plan(loaded.cases, runner.registry, backends=set(backends), device=device)
    errors = loaded.errors + p.errors
    if errors or not loaded.cases:
        raise ValueError("generated case does not load:\n" + "\n".join(map(str, errors)) + "\n" + text)
    return [runner.run(cell) for cell in p.cells]


def failures(records: list[dict]) -> list[dict]:
    return [r for r in records if r["status"] not in ACCEPTED]


def failure_message(text: str, bad: list[dict]) -> str:
    """What a failing property prints: the case file to save, then each failing cell's diff."""
    cid = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("id:")), "found")
    out = [f"{len(bad)} cell(s) neither match nor are explained by a declared difference.",
           f"Save this case as cases/found/{cid}.yaml to keep it in the suite:",
           "", "# ---8<--- case file", text.rstrip("\n"), "# --->8---", ""]
    for r in bad:
        out += [format_failure(r), ""]
    return "\n".join(out)


def case_from_message(message: str) -> str:
    """The case-file text between the markers ``failure_message`` writes."""
    start = message.index("# ---8<--- case file\n") + len("# ---8<--- case file\n")
    return message[start:message.index("\n# --->8---", start)] + "\n"
