"""How a cell's id and stable key are spelled from its fields: one place for the plan that
makes them and the results file that writes a record without them when they can be spelled
again (results schema 5). Text only, no imports."""

from __future__ import annotations


def cell_id(case_id: str, api: str, dtype: str, device: str, label: str = "", mode: str = "eager") -> str:
    """``case[api-dtype-device-mode-sweep]``; an eager cell's id has no mode (the ids before modes)."""
    return f"{case_id}[{api}-{dtype}-{device}{'' if mode == 'eager' else '-' + mode}{'-' + label if label else ''}]"


def cell_key(framework: str, case_id: str, source_api: str, api: str, device: str, mode: str, dtype: str,
             label: str) -> str:
    """A cell's stable key across runs, suite releases and framework versions (what ``conformance
    diff`` matches on). The versions (and a backend's version label) are left out on purpose:
    they are what an upgrade changes."""
    return "|".join([framework, case_id, source_api, api, device, mode, dtype, label])
