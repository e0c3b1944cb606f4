"""The YAML loaders for case files and the registry: PyYAML's safe loading, nothing evaluated.

- ``LOADER`` is libyaml's ``CSafeLoader`` where PyYAML was built with it (several times faster
  on thousands of case documents), else ``yaml.SafeLoader``; ``PY_LOADER`` is always the pure
  Python one, whose error messages do not depend on the build.
- Both read ``1e-6`` and ``2E+10`` as floats. PyYAML implements YAML 1.1, where a float needs a
  dot and a signed exponent, so ``max_norm: 1e-6`` would be the string ``"1e-6"``; YAML 1.2, the
  JSON Schema and editors (yaml-language-server) read a number. Only that resolver is added:
  tags, anchors and every other scalar resolve as in ``yaml.SafeLoader``.
"""

from __future__ import annotations

import re

import yaml

_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def _with_exponent_floats(base):
    loader = type(f"Conformance{base.__name__}", (base,), {})
    loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789"))
    return loader


PY_LOADER = _with_exponent_floats(yaml.SafeLoader)
LOADER = _with_exponent_floats(getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load(text: str):
    """One YAML document as plain data (dicts, lists, str, int, float, bool, None)."""
    return yaml.load(text, Loader=LOADER)


def construct(node):
    """The plain data of a composed node (the pure-Python constructor: safe, nothing evaluated)."""
    loader = PY_LOADER("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()
