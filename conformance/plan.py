"""Expand loaded cases into cells: case variant x target API x dtype x device.

Cell ids read ``case-id[api-dtype-device]`` (plus ``-name=value`` for each swept argument), the
same in the CLI, the results JSON, the report and pytest. A labelled backend's cells (a second
version of a framework, ``--backend paddle@3.0=PYTHON``) read ``case-id[api@3.0-dtype-device]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from . import cellids, frameworks, kinds, tensors
from .cellids import cell_id
from .kinds.interface import Kind
from .registry import Mapping, Registry
from .spec.case import Variant
from .spec.limits import DEFAULT, Limits
from .spec.load import SourceCase
from .spec.locations import CaseError, suggest


@dataclass
class Cell:
    id: str
    source: SourceCase
    variant: Variant
    mapping: Mapping
    dtype: str
    device: str
    args: dict  # the source API's arguments, defaults filled
    target_args: dict  # translated into the target API's terms
    kind: Kind  # how the cell runs (the case's kind, decided when it was loaded)
    form: str = "list"  # how the target is given the gradients: "list", or "tensor" (one bare Tensor)
    label: str = ""  # the version label of a second backend of the framework (``paddle@3.0``)
    mode: str = "eager"  # "eager", or "compiled" (docs/modes.md)

    @property
    def case(self):
        return self.source.case

    @property
    def api(self) -> str:
        return self.mapping.target

    @property
    def source_api(self) -> str:
        return self.mapping.source

    @property
    def framework(self) -> str:
        """The framework of the target API (what its snippets and ``when:`` conditions name)."""
        return self.mapping.backend

    @property
    def backend(self) -> str:
        """The backend that runs the cell: the framework, or ``framework@label``."""
        return f"{self.framework}@{self.label}" if self.label else self.framework

    @property
    def call_args(self) -> dict:
        """``target_args`` as the target is called with them: each tensor argument's dtype stated
        (the cell's where the case gave none)."""
        return tensors.with_tensor_dtypes(self.target_args, self.dtype)

    def facts(self) -> dict:
        """What ``when:``/``unless:`` conditions of the registry may test: these, plus what the
        cell's kind adds (``Kind.facts``). Worked out once per cell (a copy each call)."""
        known = self.__dict__.get("_facts")
        if known is None:
            known = self.__dict__["_facts"] = self._facts()
        return dict(known)

    def _facts(self) -> dict:
        f = {"dtype": self.dtype, "device": self.device, "mode": self.mode, "backend": self.framework,
             "grads": "model" if self.case.model is not None else "injected", "form": self.form}
        # a tensor argument is its number here, and `args.NAME.dtype` its tensor's dtype
        for prefix, given in (("args", self.args), ("target_args", self.target_args)):
            # the target's arguments after translation: one condition for every source mapped to
            # a target (torch.clamp's `max` whatever the source called its bound)
            f.update({f"{prefix}.{k}": v for k, v in tensors.plain_args(given, self.dtype).items()})
            f.update({f"{prefix}.{k}.dtype": v.get("dtype") or self.dtype
                      for k, v in given.items() if tensors.is_tensor_arg(v)})
        if self.case.model is not None:  # when: {model.loss: [cross_entropy], model.layer.conv2d: [true]}
            f["model.loss"] = self.case.model.loss.type
            f.update({f"model.layer.{layer.type}": True for layer in self.case.model.layers})
        f.update(self.kind.facts(self))
        return f


def cell_key(cell) -> str:
    """A cell's stable key (``cellids.cell_key``): backend, case, source API, target API, device,
    mode, dtype, sweep point."""
    return cellids.cell_key(cell.framework, cell.case.id, cell.source_api, cell.api, cell.device, cell.mode,
                            cell.dtype, cell.variant.label())


@dataclass
class Plan:
    cells: list = field(default_factory=list)
    errors: list = field(default_factory=list)


def keyword_matcher(expr: Optional[str]):
    """A predicate over cell ids for ``-k``: pytest's own keyword-expression language
    (``torch and not float16``), matching substrings case-insensitively as pytest does."""
    if not expr:
        return lambda _id, tags=(): True
    from _pytest.mark.expression import Expression  # pytest is a dependency; reuse its parser

    try:
        compiled = Expression.compile(expr)
    except Exception as e:  # pytest's ParseError: a usage error, not a crash
        raise ValueError(f"-k {expr!r}: {e}") from None

    def match(cell_id_: str, tags=()) -> bool:
        low = cell_id_.lower()
        return compiled.evaluate(lambda name, **kw: name.lower() in low or name in tags)

    return match


def cell_count(case, n_targets: int) -> int:
    """How many cells ``case`` expands to with ``n_targets`` target APIs, computed without
    expanding its sweep (a sweep of a million points is refused, not built)."""
    n = n_targets
    for key, values in case.sweep.items():
        n *= len(values)
    if "dtypes" not in case.sweep:
        n *= len(case.dtypes)
    if "devices" not in case.sweep:
        n *= len(case.devices)
    return n


def modes_of(case, framework: str, wanted: str) -> list:
    """The modes a case's cells on ``framework`` run in: the case's ``modes:`` that ``wanted``
    (``--mode eager|compiled|all``) selects, compiled only where the framework compiles the
    case's kind (``Framework.compiled``)."""
    fw = frameworks.discover().get(framework)
    can = ("eager", "compiled") if fw is not None and case.kind in fw.compiled else ("eager",)
    return [m for m in case.modes if m in can and wanted in (m, "all")]


def plan(cases: list[SourceCase], registry: Registry, *, backends: Optional[set] = None,
         device: str = "all", keyword: Optional[str] = None, limits: Limits = DEFAULT,
         mode: str = "eager") -> Plan:
    """Expand ``cases``; API or argument problems become ``CaseError``s with the file's line, and
    so does a case that would take a file or the run past ``limits`` (it is left out). ``mode``:
    ``eager`` (the default), ``compiled`` or ``all``."""
    out = Plan()
    per_file: dict = {}
    total = 0
    match = keyword_matcher(keyword)
    by_kind = kinds.kinds()
    labels: dict = {}  # framework -> the labels of its backends ("" unlabelled), unlabelled first
    for b in sorted(backends or ()):
        framework, _, label = b.partition("@")
        labels.setdefault(framework, []).append(label)
    for sc in cases:
        case = sc.case
        kind = by_kind[case.kind]
        line = lambda *loc: sc.lines.get(tuple(loc), sc.line)  # noqa: E731

        def error(loc, field: str, problem: str) -> None:
            err = CaseError(sc.path, line(*loc), field, problem)
            if str(err) not in map(str, out.errors):
                out.errors.append(err)

        api = registry.apis.get(case.clip.api)
        if api is None or not registry.targets(case.clip.api):
            hint = suggest(case.clip.api, registry.sources())
            error(("clip", "api"), "clip.api", f"{case.clip.api!r} is not a source API in the registry{hint}")
            continue
        if api.kind != case.kind:
            need = " or ".join(f"`{f}:`" for f in kinds.blocks()[api.kind].inputs)
            error(("clip", "api"), "clip.api", f"{case.clip.api} is a {api.kind} API: it needs {need}")
            continue
        if case.clip.form not in api.forms:
            error(("clip", "form"), "clip.form", f"{case.clip.api} takes the gradients as "
                  f"{' or '.join(api.forms)}, not as {case.clip.form!r}")
            continue
        mappings = registry.targets(case.clip.api)
        known = {m.target for m in mappings}
        for i, e in enumerate(case.expect):
            at = ("expect", i, "api") if ("expect", i) in sc.lines else ("expect", "api")
            for t in e.apis():
                if t not in known:
                    field = f"expect[{i}].api" if at[1] == i else "expect.api"
                    error(at, field, f"{t!r} is not a target of {case.clip.api}{suggest(t, known)}")
        if case.targets is not None:
            for i, t in enumerate(case.targets):
                if t not in known:
                    error(("targets", i), f"targets[{i}]", f"{t!r} is not a target of {case.clip.api}{suggest(t, known)}")
            mappings = [m for m in mappings if m.target in case.targets]
        n = cell_count(case, len(mappings))
        if per_file.get(sc.path, 0) + n > limits.cells_per_file or total + n > limits.cells_per_run:
            which = ("cells_per_file", limits.cells_per_file) if per_file.get(sc.path, 0) + n > limits.cells_per_file \
                else ("cells_per_run", limits.cells_per_run)
            error(("sweep",) if case.sweep else ("id",), "sweep" if case.sweep else "id",
                  f"{case.id} expands to {n} cells, which takes the {'file' if which[0] == 'cells_per_file' else 'run'} "
                  f"past {which[1]} (limit {which[0]}; raise it with --limit {which[0]}=N)")
            continue
        per_file[sc.path] = per_file.get(sc.path, 0) + n
        total += n
        seen_ids: set = set()
        for variant in case.variants():
            args, problems = registry.source_args(case.clip.api, variant.args)
            for p in problems:
                arg = p.split(":", 1)[0]
                swept = f"clip.args.{arg}" in case.sweep
                loc = ("sweep", f"clip.args.{arg}") if swept else ("clip", "args", arg)
                if loc not in sc.lines:
                    loc = ("clip", "args")
                error(loc, "clip.args." + arg, p.split(": ", 1)[1])
            if problems:
                continue
            for m, label in ((m, label) for m in mappings
                             for label in (labels.get(m.backend, ()) if backends is not None else ("",))):
                try:
                    target_args = kind.target_args(registry, m, args, case)
                except ValueError as e:
                    error(("clip", "args"), "clip.args", f"{m.target}: {e}")
                    continue
                for dtype, dev, how in ((t, d, h) for t in variant.dtypes for d in variant.devices
                                        for h in modes_of(case, m.backend, mode)):
                    if device != "all" and dev != device:
                        continue
                    cid = cell_id(case.id, f"{m.target}@{label}" if label else m.target, dtype, dev,
                                  variant.label(), how)
                    if cid in seen_ids:  # two sweep values that are the same value
                        error(("sweep",), "sweep", f"two sweep combinations give the same cell {cid}")
                        continue
                    seen_ids.add(cid)
                    if match(cid, case.tags):
                        form = case.clip.form if case.clip.form in registry.apis[m.target].forms else "list"
                        out.cells.append(Cell(cid, sc, variant, m, dtype, dev, args, target_args, kind, form,
                                              label, how))
    return out


def call_problems(rejected, registry: Registry) -> list:
    """The API and argument problems of the calls of cases that failed validation
    (``LoadResult.rejected``), so a file's misspelt argument shows with its other errors.
    Required arguments are not asked for here (the sweep may give them)."""
    out = []
    for r in rejected:
        line = lambda *loc: r.lines.get(tuple(loc), r.line)  # noqa: E731
        if r.api not in registry.apis or not registry.targets(r.api):
            out.append(CaseError(r.path, line("clip", "api"), "clip.api",
                                 f"{r.api!r} is not a source API in the registry{suggest(r.api, registry.sources())}"))
            continue
        _, problems = registry.source_args(r.api, r.args)
        for p in problems:
            arg, text = p.split(": ", 1)
            if text.startswith("required argument"):
                continue  # the sweep may give it, or the schema error already says what is missing
            out.append(CaseError(r.path, line("clip", "args", arg) if ("clip", "args", arg) in r.lines
                                 else line("clip", "args"), f"clip.args.{arg}", text))
    return out
