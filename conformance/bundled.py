"""Where the bundled case files (and their JSON Schema) are: the copy an installed wheel ships
inside the package (``conformance/bundled_cases``, made by ``setup.py`` at build time), else the
source tree's ``cases/`` (a clone, an editable install)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
SCHEMA = "case.schema.json"


def cases_dir() -> Path:
    """The folder of the bundled cases (it holds ``case.schema.json``)."""
    for d in (_PACKAGE / "bundled_cases", _PACKAGE.parent / "cases"):
        if (d / SCHEMA).is_file():
            return d
    raise FileNotFoundError(f"no bundled cases: neither {_PACKAGE / 'bundled_cases'} nor "
                            f"{_PACKAGE.parent / 'cases'} holds {SCHEMA} (a broken install?)")
