"""The JSON Schema of a case file (shipped as cases/case.schema.json for editors)."""

from __future__ import annotations

from .case import Case


def json_schema() -> dict:
    """JSON Schema of a case file: the case model (every kind's block), ``call:`` as a synonym
    of ``clip:``."""
    schema = Case.model_json_schema(by_alias=True)
    # `call:` is accepted as a synonym of `clip:` (renamed before validation, see load._call_alias)
    props = schema.get("properties", {})
    if "clip" in props:
        props["call"] = dict(props["clip"], description="synonym of clip: the call under test")
        schema["required"] = [r for r in schema.get("required", []) if r != "clip"]
        schema["oneOf"] = [{"required": ["clip"]}, {"required": ["call"]}]
    # `expect:` is one entry or a list of them (a mapping becomes a list of one: Case._one_expect)
    if "expect" in props:
        entry = props["expect"]["items"]
        props["expect"] = {"anyOf": [entry, {"type": "array", "items": entry}],
                           "description": "one entry, or a list of entries each for some target APIs (`api:`)"}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "gradclip conformance case"
    return schema
