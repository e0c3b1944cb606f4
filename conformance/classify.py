"""The status of one cell: match, known, mismatch, error or unsupported.

One rule for every kind of cell (``conformance/kinds``): the kinds differ only in how an oracle
variant is computed, how a result is compared and how ``expect`` literals are checked, which
they pass in as :class:`Hooks`. The order of the rule (docs/ARCHITECTURE.md):

when the target raised
    the declaration whose ``match:`` is in the message wins (an ``unsupported`` gap, or a
    difference that declares the raise: ``known``), the longest match first; else a declared gap
    without ``match:`` that applies; else ``match`` if the source's oracle raises the same type; else ``known`` if a difference
    declares that type (``raises:``) or its variant's oracle raises it too; else ``mismatch``
    (the source raises something else) or ``error`` (the source returns).
when the source raises and the target returned
    ``known`` if a difference's variant returns what the target returned, else ``mismatch``.
otherwise
    ``unsupported`` if a gap declares the target's numbers undefined here (``undefined: true``),
    whatever they are: numbers read from uninitialised memory may agree with the oracle in one
    run and not the next, and a status must not depend on that (the metrics are still
    recorded, and the message says whether they agreed this time); else ``match`` when the
    numbers agree (and the ``expect`` literals hold); else ``known`` when a difference's variant
    reproduces them; else ``known`` when the target's declared arithmetic (``numerics``: its
    summation order), alone or on top of a difference's variant, reproduces them; else
    ``mismatch``.
then, where the case's ``expect`` says the target must agree with the source (``agree: true``)
    a ``known`` or ``unsupported`` verdict becomes ``mismatch``: the declaration explains the
    difference, and the case has said that this difference is not acceptable. The declaration
    stays on the record (``required: agree``, ``declared: {status, difference}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from .compare import Comparison
from .registry.entries import Difference


@dataclass
class Hooks:
    """What a kind tells the rule (each ``got`` is the worker's result for the cell)."""

    oracle: Callable[[Optional[dict]], Any]  # variant knobs -> the source's oracle result under them (.raises)
    compare: Callable[[Any, dict], Comparison]  # (oracle result, got) -> their comparison
    expect: Callable[[dict, bool], list]  # (got, raised?) -> the case's failing `expect` literals
    detail: Optional[Callable[[Comparison, dict, dict], None]] = None  # (comparison, got, rec): record more
    note: Optional[Callable[[dict], str]] = None  # got -> a remark added to every verdict's message


def classify(cell, want, got: dict, rec: dict, hooks: Hooks) -> None:
    """Set ``rec["status"]`` (and difference, message, metrics) for one cell; see the module doc."""
    _verdict(cell, want, got, rec, hooks)
    if rec["status"] in ("known", "unsupported") and cell.case.must_agree(cell.api):
        declared = {"status": rec["status"], "difference": rec.get("difference")}
        why = f"{rec['difference']}: " if rec.get("difference") else ""
        rec.update(status="mismatch", difference=None, required="agree", declared=declared,
                   message=f"expect.agree: {cell.api} must do what {cell.source_api} does here, "
                           f"but it is {declared['status']} ({why}{rec.get('message') or ''})")
    note = hooks.note(got) if hooks.note is not None else ""
    if note:
        rec["message"] = "; ".join(filter(None, [rec.get("message"), note]))


def _verdict(cell, want, got: dict, rec: dict, hooks: Hooks) -> None:
    facts = cell.facts()
    mapping = cell.mapping
    raised = got.get("raised")
    if raised:
        _raised(cell, want, got, rec, hooks, facts, _applying(mapping.differences, facts))
        return
    if want.raises:
        diffs = _applying(mapping.differences, facts)
        # the same explanations as for numbers below: each difference, the target's numerics
        # alone, then each difference computed as each numerics
        numerics = _applying(mapping.numerics, facts)
        tries = [(d.id, d.text, d.variant) for d in diffs if "raises" not in d.variant]
        tries += [(n.id, n.text, n.variant) for n in numerics]
        tries += [(d.id, f"{d.text} (computed as {n.id}: {n.text})", {**d.variant, **n.variant})
                  for d in diffs if "raises" not in d.variant for n in numerics]
        for did, text, variant in tries:
            alt = hooks.oracle(variant)
            if not alt.raises and hooks.compare(alt, got).ok:
                rec.update(status="known", difference=did,
                           message=f"returned where the source raises {want.raises}: {text}")
                return
        rec.update(status="mismatch", message=f"the source API raises {want.raises} here; {cell.api} returned")
        return
    c = hooks.compare(want, got)
    rec.update(c.totals())
    rec["params"] = {k: m.as_dict() for k, m in c.params.items()}
    if hooks.detail is not None:
        hooks.detail(c, got, rec)
    for u in mapping.unsupported:  # declared: the target's numbers are undefined here
        if u.undefined and u.applies(facts):
            agreed = "agreed with the oracle this time" if c.ok else c.summary()
            rec.update(status="unsupported", message=f"{u.reason} ({agreed})")
            return
    if c.ok:
        fails = hooks.expect(got, False)
        rec.update(status="mismatch" if fails else "match", message="; ".join(fails))
        return
    diffs = _applying(mapping.differences, facts)  # (a matching cell never asks)
    for d in diffs:
        alt = hooks.oracle(d.variant)
        if not alt.raises and hooks.compare(alt, got).ok:
            rec.update(status="known", difference=d.id, message=d.text)
            return
    # how the target computes (its summation order): alone, then under each difference
    numerics = _applying(mapping.numerics, facts)
    for n in numerics:
        alt = hooks.oracle(n.variant)
        if not alt.raises and hooks.compare(alt, got).ok:
            rec.update(status="known", difference=n.id, message=n.text)
            return
    for d in diffs:
        for n in numerics:
            alt = hooks.oracle({**d.variant, **n.variant})
            if not alt.raises and hooks.compare(alt, got).ok:
                rec.update(status="known", difference=d.id, message=f"{d.text} (computed as {n.id}: {n.text})")
                return
    rec.update(status="mismatch", message=c.summary())


def _applying(entries, facts: dict) -> list:
    return [e for e in entries if e.applies(facts)]


def _raised(cell, want, got: dict, rec: dict, hooks: Hooks, facts: dict, diffs: list) -> None:
    raised = got["raised"]
    text = f"{raised['type']}: {raised['message']}"
    # the declaration that names this very error wins: a gap or a difference whose `match:` is in
    # the message, the longest match first (a generic gap for the dtype must not claim a raise a
    # specific declaration explains: Paddle's float16 gap vs "norm_type only support ...")
    named = [(len(u.match), 0, i, u) for i, u in enumerate(cell.mapping.unsupported)
             if not u.undefined and u.match is not None and u.applies(facts, text)]
    named += [(len(d.match), 1, i, d) for i, d in enumerate(diffs)
              if d.match is not None and d.match in text and d.variant.get("raises") in (raised["type"], "*")]
    if named:
        *_, best = max(named, key=lambda t: (t[0], -t[1], -t[2]))
        if isinstance(best, Difference):
            rec.update(status="known", difference=best.id, message=text)
        else:
            rec.update(status="unsupported", message=f"{best.reason} ({text})")
        return
    for u in cell.mapping.unsupported:  # a declared gap for these facts, whatever the source would do
        if not u.undefined and u.match is None and u.applies(facts, text):
            rec.update(status="unsupported", message=f"{u.reason} ({text})")
            return
    if want.raises and raised["type"] == want.raises:
        fails = hooks.expect(got, True)
        rec.update(status="mismatch" if fails else "match",
                   message="; ".join(fails) or f"raised as the source does ({text})")
        return
    for d in diffs:
        if d.match is not None and d.match not in text:
            continue
        if d.variant.get("raises") in (raised["type"], "*"):
            rec.update(status="known", difference=d.id, message=text)
            return
        # a variant whose oracle itself raises the same type (error_if_nonfinite with the
        # target's non-finite norm, say) explains the raise as well as `raises:` does
        if "raises" not in d.variant and hooks.oracle(d.variant).raises == raised["type"]:
            rec.update(status="known", difference=d.id, message=f"raised as the variant's oracle does ({text})")
            return
    if want.raises:
        rec.update(status="mismatch", message=f"raised {text}; the source raises {want.raises} here")
    else:
        rec.update(status="error", message=f"raised where the source API returns: {text}")
