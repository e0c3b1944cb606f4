"""JAX with optax, one folder: ``worker.py`` runs its clipping jobs in a worker process (it
imports jax and optax, and turns on ``jax_enable_x64`` at import, as a user who wants float64
does), ``clipping.py`` holds the optax APIs and the plain ``jax.numpy`` networks of model cases,
``tensors.py`` the dtypes and arrays in and out, ``caches.py`` the bound on the worker's
compilation caches and their copy on disk, ``snippets.py`` the reproduction snippets (text
only), ``registry/*.yaml`` the APIs and mappings. This file imports no framework."""

from ..base import Framework

# jax 0.10 needs numpy>=2 (MindSpore's env pins numpy<2: each framework has its own interpreter).
FRAMEWORK = Framework(name="jax", package="jax", title="JAX / optax", pip="jax",
                      tox_deps=("jax==0.10.2", "jaxlib==0.10.2", "optax==0.2.8", "numpy>=2"),
                      order=4, prefixes=("optax",),  # optax.clip_by_global_norm is a jax API
                      compiled=("clipping",),  # the clip inside jax.jit (clipping.py)
                      # measured on the bundled CPU cells (5,378 eager in 137 s, 5,311 compiled
                      # in 104 s, 2 cores); what --shard balances
                      cell_ms={"eager": 25.5, "compiled": 19.6})
