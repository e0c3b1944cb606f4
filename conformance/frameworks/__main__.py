"""``python -m conformance.frameworks COMMAND``: what the build tools ask of the framework folders.

- ``names``: the frameworks, one line (the Makefile's backend environments);
- ``check ENV``: exit 1 when ENV is a framework whose package this interpreter cannot find
  (``tools/build-envs`` runs it in each built environment; nothing is imported);
- ``tox-ini [PATH]``: rewrite tox.ini's generated environments (``toxini``).
Standard library only.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from . import discover
from .toxini import render


def main(argv: list) -> int:
    command, *rest = argv or ["names"]
    if command == "names":
        print(" ".join(discover()))
        return 0
    if command == "check":
        fw = discover().get(rest[0])
        return 0 if fw is None or importlib.util.find_spec(fw.package) is not None else 1
    if command == "tox-ini":
        path = Path(rest[0] if rest else "tox.ini")
        path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
