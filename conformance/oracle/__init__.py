"""The float64 numpy oracle, independent of every framework.

``network``: forward and hand-written backward of the layer/loss set (the gradients of a case's
``model:``), checked against central finite differences. Each kind of case keeps the semantics
of its APIs beside it, one pure function per semantic: ``conformance/kinds/<kind>/oracle.py``.
numpy and the standard library only.
"""
