"""Case files: what a user writes (docs/ARCHITECTURE.md), read safely, checked with
``path:line: field: problem`` errors. One module per job:

- ``values``: tensor values (numbers, nested lists, generator mappings);
- ``models``: the network block (``model:``) and the arrays it becomes;
- ``locations``: each field's line, pydantic's errors as ``path:line: field: problem``;
- ``case``: the case model, built from the shared fields and every kind's block
  (``conformance/kinds/<kind>/block.py``), the kind decided once, and the sweep's variants;
- ``load``: files to cases, one broken file never stopping the others;
- ``schema``: the JSON Schema editors use.

Import the module you need; this face imports none of them, so that the kinds' blocks (which the
case model is built from) can use ``values``, ``models`` and ``locations``.
"""
