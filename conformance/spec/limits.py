"""How big a case file and what it asks for may be, so that a small hostile file (a YAML alias
bomb, nesting thousands deep, a sweep of a million cells, a tensor of 10^10 elements, a link
to /dev/zero) is one ``path:line`` error and the other files still run. ``conformance run
--limit NAME=VALUE`` and ``validate --limit`` raise one (docs in the README's "Limits")."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Limits:
    file_bytes: int = 8 * 2**20  # a case file (the bundled ones are under 10 KB)
    depth: int = 64  # nesting of mappings and lists in one YAML document
    nodes: int = 1_000_000  # YAML nodes of one document once aliases are expanded
    tensor_elements: int = 2**26  # elements of one tensor value (512 MiB in float64)
    tensor_rank: int = 32  # dimensions of one tensor value (numpy 1's limit)
    cells_per_file: int = 50_000  # cells one case file expands to (the bundled maximum: 5,598)
    cells_per_run: int = 500_000  # cells of one run

    def with_overrides(self, items) -> "Limits":
        """``["cells_per_run=2000000", ...]`` applied; ValueError names what is wrong."""
        known = {f.name for f in fields(self)}
        changes = {}
        for item in items or ():
            name, sep, value = item.partition("=")
            if not sep or name not in known:
                raise ValueError(f"--limit {item!r}: use NAME=VALUE, NAME one of {', '.join(sorted(known))}")
            try:
                changes[name] = int(value)
            except ValueError:
                raise ValueError(f"--limit {item!r}: {value!r} is not a whole number") from None
            if changes[name] < 1:
                raise ValueError(f"--limit {item!r}: a limit is at least 1")
        return replace(self, **changes)


DEFAULT = Limits()
