"""A toy framework for tests/test_toy_framework.py: numpy standing in for a deep-learning
framework, kept outside the package and found through $CONFORMANCE_FRAMEWORKS_PATH. It follows
docs/ARCHITECTURE.md's recipe "How to add a framework" and nothing else."""

from ..base import Framework

FRAMEWORK = Framework(name="toy", package="numpy", title="Toy", pip="numpy", order=50)
