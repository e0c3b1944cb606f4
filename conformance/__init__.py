"""gradclip conformance: cross-framework conformance of gradient clipping and derivation.

This package's top level imports nothing heavy: worker subprocesses import it under other
interpreters (a MindSpore venv with numpy<2, say) where only the standard library and numpy exist.
"""

__version__ = "0.1.0"
