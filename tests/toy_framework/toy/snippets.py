"""The toy's reproduction snippets (text only)."""

from conformance.snippets import header


def _note(cell, inputs) -> str:
    return "\n".join([*header(cell), f"# the toy framework runs {cell.api} with numpy (tests/toy_framework)"]) + "\n"


SNIPPETS = {"clipping": {"toy.clip_grad_norm": _note}, "derivation": {"toy.grad": _note},
            "training": {"toy.sgd": _note}}
