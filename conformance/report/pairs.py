"""The porting question, per API pair: can the target API replace the source API, and if not,
when does it differ? (docs/report.md, "Pairs".)

A pair is (source API, target API) over every cell that ran the target on a case of that source
(identity pairs, target == source, compare an API with its own oracle). Each cell is placed in
the **common configuration** or among the **edge cases**:

- common: float32, eager, every gradient present, non-empty and finite, its largest element
  between ``TINY`` and ``HUGE`` (its squares neither underflow nor overflow float32), the L2 norm
  (a ``norm_type``/``ord`` argument of 2 or none), a positive finite threshold and no
  ``error_if_nonfinite=True``;
- an edge cell is named by the ways it leaves that configuration (``float16``, ``compiled``,
  ``NaN``, ``inf``, ``empty``, ``no gradient``, ``huge values``, ``tiny values``,
  ``norm_type=inf``, ``max_norm=0``, ``error_if_nonfinite``).

The verdict, in words (skipped cells count nowhere):

- **drop-in**: every common cell and every edge cell matches the source's oracle;
- **drop-in except ...**: every common cell agrees; some edge cells differ, raise or are
  unsupported, and the "except" lists the smallest sets of conditions under which they do
  (a set that contains a smaller listed set is left out: ``float16`` covers ``float16 + NaN``);
- **not a replacement**: a common cell differs or raises where the source does not: the target
  changes the result of the ordinary call;
- **not measured in the common configuration**: the pair has edge cells only.

A declared difference is a condition of its own (``drop-in except paddle-globalnorm-no-eps``)
where it cannot be told from the inputs: for derivation and training pairs (non-scalar outputs,
unused inputs, parameter groups: the structure of the call) and, for clipping pairs, where every
common cell it explains differs by at most ``SMALL`` relative. A larger declared difference in
the common configuration (per-tensor for global clipping) makes the pair not a replacement.

A common cell that is ``known`` by a registry ``numerics`` entry (the same formula, rounded
otherwise: a summation order, a float32 accumulator) agrees; the pair counts it as
``rounding``. Every other ``known`` cell is a difference of the math, declared or not.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import Any, Callable, Dict, Iterable, List, Mapping, Tuple

from .fmt import as_list, as_mapping, as_text

#: arguments that pick the p of a p-norm, in the frameworks' spellings
_NORM_ARGS = ("norm_type", "ord")
#: value-clipping bounds (low, high): the common call has two numbers, low <= high
_BOUND_ARGS = (("clip_value_min", "clip_value_max"), ("min", "max"))  # MindSpore/TF, Paddle
#: clipping thresholds: one that is not a positive finite number is an edge case
_THRESHOLD_ARGS = ("max_norm", "clip_norm", "clip_value", "max_value", "max_delta", "max")
#: float32's range for a sum of squares: an element above sqrt(max) overflows when squared, a
#: largest element below sqrt(tiny) leaves only subnormal squares (``huge values``, ``tiny values``)
HUGE = 1.8446742e19
TINY = 1.0842022e-19
#: a declared difference of a clipping pair whose common cells differ by at most this (relative
#: to the source's oracle) leaves the target a drop-in but for it (an epsilon: 1e-6 / norm)
SMALL = 1e-3
VERDICTS = ("drop-in", "drop-in except", "not a replacement", "not measured in the common configuration")

#: CSS class of each verdict (the front table colours them)
_CLASS = dict(zip(VERDICTS, ("dropin", "except", "not", "none")))

_SLUG_BAD = re.compile(r"[^A-Za-z0-9._-]")


def pair_slug(source: str, target: str) -> str:
    """File name stem of a pair's page under ``pairs/`` (API names are dotted identifiers)."""
    return _SLUG_BAD.sub("_", "%s--%s" % (source, target))[:160]


def _number(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def conditions(record: Mapping, case_info: Mapping) -> Tuple[str, ...]:
    """How a cell leaves the common configuration (empty: it is a common cell)."""
    out: List[str] = []
    dtype = as_text(record.get("dtype"))
    if dtype and dtype != "float32":
        out.append(dtype)
    if as_text(record.get("mode")) not in ("", "eager"):
        out.append(as_text(record.get("mode")))
    if case_info.get("mixed_dtypes"):
        out.append("mixed dtypes")
    inputs = as_mapping(case_info.get("inputs"))
    tensors = [as_mapping(t) for t in as_list(inputs.get("tensors"))]
    if any(not isinstance(t.get("shape"), list) for t in tensors) or ("tensors" in inputs and not tensors):
        out.append("no gradient")
    if any(isinstance(t.get("shape"), list) and t.get("size") == 0 for t in tensors):
        out.append("empty")
    if any(t.get("shape") == [] for t in tensors):
        out.append("0-d")
    if any(t.get("nan") for t in tensors):
        out.append("NaN")
    if any(t.get("inf") for t in tensors):
        out.append("inf")
    largest = max((abs(float(t[k])) for t in tensors for k in ("min", "max")
                   if isinstance(t.get(k), (int, float))), default=None)
    if largest is not None and largest > HUGE:
        out.append("huge values")
    elif largest is not None and 0 < largest < TINY:
        out.append("tiny values")
    # the source API's arguments: the case's (results of schema 4 and later) and the cell's sweep
    args = dict(as_mapping(case_info.get("args")), **as_mapping(record.get("sweep")))
    for name in _NORM_ARGS:
        p = _number(args.get(name))
        if p is not None and p != 2:
            out.append("%s=%s" % (name, as_text(args.get(name))))
    if args.get("error_if_nonfinite") is True:
        out.append("error_if_nonfinite")
    for low, high in _BOUND_ARGS:
        if low in args or high in args:
            lo, hi = _number(args.get(low)), _number(args.get(high))
            if isinstance(lo, Mapping) or isinstance(hi, Mapping):
                out.append("tensor bound")
            elif hi is None or (lo is None and low != "min"):  # Paddle's min=None is -max
                out.append("one-sided bound")
            elif lo is not None and lo > hi:
                out.append("min > max")
    for name in _THRESHOLD_ARGS:
        bound = _number(args.get(name))
        if isinstance(bound, (int, float)) and not isinstance(bound, bool) and not 0 < bound < float("inf"):
            out.append("%s=%s" % (name, as_text(args.get(name))))
    return tuple(out)


def _minimal(sets: Iterable[Tuple[str, ...]]) -> List[Tuple[str, ...]]:
    """The condition sets that contain no other one of ``sets``, fewest conditions first."""
    unique = sorted(set(sets), key=lambda s: (len(s), s))
    keep: List[Tuple[str, ...]] = []
    for s in unique:
        if not any(set(k) <= set(s) for k in keep):
            keep.append(s)
    return keep


#: cells linked as evidence per condition set (each cell's own page anchor)
EXAMPLES = 3


def _example(c: Mapping) -> Dict[str, str]:
    return {"id": c["id"], "status": c["status"], "difference": c["difference"],
            "href": "%s#%s" % (c.get("href", ""), c.get("anchor", "")) if c.get("href") else ""}


def _point(c: Mapping) -> Dict[str, Any]:
    """A cell as the pair's plot draws it: its max relative error over its rtol."""
    raw = as_mapping(c.get("raw"))
    err, rtol = raw.get("max_rel_err"), as_mapping(raw.get("tolerance")).get("rtol")
    ratio = (float(err) / float(rtol) if isinstance(err, (int, float)) and isinstance(rtol, (int, float)) and rtol
             else None)
    return {"ratio": ratio, "status": c["status"], "id": c["id"],
            "href": "../%s#%s" % (c["href"], c.get("anchor", "")) if c.get("href") else ""}


def _verdict(common_bad: Counter, edge_bad: List[Any], n_common: int) -> str:
    if n_common == 0:
        return VERDICTS[3]
    if sum(common_bad.values()):
        return VERDICTS[2]
    return VERDICTS[1] if edge_bad else VERDICTS[0]


def _small_differences(placed: List[tuple]) -> set:
    """The declared differences whose common cells all differ by at most ``SMALL`` relative
    (``placed``: each cell with its conditions)."""
    worst: Dict[str, float] = {}
    for c, conds in placed:
        if c["status"] == "known" and not conds:
            err = as_mapping(c.get("raw")).get("max_rel_err")
            err = float(err) if isinstance(err, (int, float)) else float("inf")
            worst[c["difference"]] = max(worst.get(c["difference"], 0.0), err if err == err else float("inf"))
    return {d for d, err in worst.items() if err <= SMALL}


def _pair(source: str, target: str, group: List[Mapping], cases_info: Mapping, reg: Mapping,
          numerics: set, clipping: bool, snippet_of: Callable[[str, str], Mapping]) -> Dict[str, Any]:
    common: Counter = Counter()
    edge: Counter = Counter()
    edge_bad: Dict[Tuple[str, ...], Counter] = defaultdict(Counter)
    examples: Dict[Tuple[str, ...], List[Dict[str, str]]] = defaultdict(list)
    differences: Dict[str, Dict[str, Any]] = {}
    fix = None
    rounding = 0
    measured = [(c, conditions(as_mapping(c.get("raw")), as_mapping(cases_info.get(c["case"])))) for c in group]
    small = _small_differences(measured) if clipping else set()
    placed: List[tuple] = []  # (cell, its conditions, a small difference counted as one)
    for c, conds in measured:
        agrees = c["status"] == "match"
        if not conds and c["status"] == "known":
            if c["difference"] in numerics:
                rounding += 1  # the same math, another rounding (a registry `numerics` entry)
                agrees = True
            elif not clipping or c["difference"] in small:
                conds = (c["difference"],)  # a condition of its own (the module's docstring)
        (edge if conds else common)[c["status"]] += 1
        placed.append((c, conds))
        if not agrees:
            edge_bad[conds][c["status"]] += 1
            examples[conds].append(_example(c))
        if c["difference"]:
            d = differences.setdefault(c["difference"], {"id": c["difference"], "common": 0, "edge": 0})
            d["edge" if conds else "common"] += 1
        if fix is None and not conds and c["status"] == "match":
            # a case keeps one snippet per target API, of one of its cells: it is this pair's
            # fix when that cell is this one (a common cell that matched)
            snip = as_mapping(snippet_of(c["case"], target))
            if snip.get("text") and snip.get("cell") == c["id"]:
                fix = {"text": as_text(snip.get("text")), "cell": c["id"], "case": c["case"]}
    common_bad = edge_bad.pop((), Counter())
    sets = _minimal(edge_bad)
    plot_rows: Dict[str, List[Dict[str, Any]]] = {"common configuration": []}
    for s in sets:
        plot_rows[" + ".join(s)] = []
    plot_rows["other edge cases"] = []
    for c, conds in placed:
        label = ("common configuration" if not conds else
                 next((" + ".join(s) for s in sets if set(s) <= set(conds)), "other edge cases"))
        plot_rows[label].append(_point(c))
    except_rows = []
    for conds in sets:
        counts: Counter = Counter()
        shown: List[Dict[str, str]] = []
        for s, n in sorted(edge_bad.items(), key=lambda kv: (len(kv[0]), kv[0])):  # its own cells first
            if set(conds) <= set(s):
                counts.update(n)
                shown.extend(examples[s][:EXAMPLES - len(shown)])
        except_rows.append({"when": " + ".join(conds), "counts": dict(counts), "examples": shown})
    n_common = sum(common.values())
    return {
        "source": source, "target": target, "identity": source == target,
        "backend": as_text(group[0].get("backend")), "slug": pair_slug(source, target),
        "verdict": (verdict := _verdict(common_bad, except_rows, n_common)),
        "verdict_cls": _CLASS[verdict],
        "except": except_rows,
        "common": dict(common), "n_common": n_common, "common_match": common.get("match", 0) + rounding,
        "rounding": rounding,
        "common_examples": examples[()][:EXAMPLES] if common_bad else [],
        "common_bad": dict(common_bad),
        "common_differences": sorted({x["difference"] for x in examples[()] if x["difference"]}),
        "edge": dict(edge), "n_edge": sum(edge.values()),
        "differences": sorted(differences.values(), key=lambda d: (-d["common"], -d["edge"], d["id"])),
        "misleading": as_text(reg.get("misleading")), "category": as_text(reg.get("category")),
        "fix": fix,
        "plot_rows": [(label, cells) for label, cells in plot_rows.items() if cells],
    }


def _order(item) -> tuple:
    """torch's sources first (the porting question starts there most often), then by name."""
    (source, target), _ = item
    return (not source.startswith("torch."), source, target != source, target)


def build_pairs(cells: List[Mapping], cases_info: Mapping, mappings: Iterable[Mapping],
                kind_of: Callable[[str], str], snippet_of: Callable[[str, str], Mapping]) -> List[Dict[str, Any]]:
    """One view per (source API, target API): torch's sources first, each source's identity pair
    first among its targets. ``cells``: the
    report's cell views (``raw`` record, ``href`` and ``anchor`` set); ``mappings``: the registry
    snapshot's; ``kind_of(api)``: the kind of a source API (``clipping``, ``derivation``, ...); ``snippet_of(case, api)``: the case's reproduction snippet of ``api`` ({} if none)."""
    by_pair: Dict[Tuple[str, str], List[Mapping]] = defaultdict(list)
    for c in cells:
        if c["status"] != "skipped" and c["source_api"] and c["api"]:
            by_pair[(c["source_api"], c["api"])].append(c)
    registry = {(as_text(m.get("source")), as_text(m.get("target"))): m
                for m in (as_mapping(x) for x in mappings)}
    numerics = {as_text(as_mapping(n).get("id")) for m in registry.values() for n in as_list(m.get("numerics"))}
    pairs = [_pair(source, target, group, cases_info, registry.get((source, target), {}), numerics,
                   kind_of(source) == "clipping", snippet_of)
             for (source, target), group in sorted(by_pair.items(), key=_order)]
    present = {(p["source"], p["target"]) for p in pairs}
    for p in pairs:
        p["reverse"] = pair_slug(p["target"], p["source"]) if (p["target"], p["source"]) in present else ""
        # where this target is no replacement: the same framework's targets of this source that are
        p["instead"] = [{"target": q["target"], "slug": q["slug"], "verdict": q["verdict"]} for q in pairs
                        if p["verdict"] == VERDICTS[2] and q["source"] == p["source"] and q["backend"] == p["backend"]
                        and q["target"] != p["target"] and not q["identity"] and q["verdict"] in VERDICTS[:2]]
    return pairs
