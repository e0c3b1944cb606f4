"""TensorFlow (``tensorflow-cpu``), one folder: ``worker.py`` runs its clipping jobs in a worker
process (eager, and compiled in ``tf.function``: ``compiled.py``; it imports tensorflow once, with TF's C++ log level set to 2 first so that
its info and warning lines stay out of stderr), ``clipping.py`` holds the ``tf.clip_by_*`` calls
and the Keras-optimizer clipping, ``tensors.py`` the dtypes and tensors in and out, ``snippets.py``
the reproduction snippets (text only), ``registry/*.yaml`` the APIs and mappings. This file
imports no framework."""

from ..base import Framework

FRAMEWORK = Framework(name="tensorflow", package="tensorflow", title="TensorFlow", pip="tensorflow-cpu",
                      tox_deps=("tensorflow-cpu==2.21.0",),
                      tox_setenv={"TF_CPP_MIN_LOG_LEVEL": "2"},
                      order=3,
                      prefixes=("tf",),
                      compiled=("clipping",),  # the clip inside tf.function (compiled.py)  # its APIs as users write them: tf.clip_by_global_norm
                      # measured on the bundled run (5,379 cells, --mode all); what --shard balances
                      cell_ms={"eager": 19.0, "compiled": 34.2})
