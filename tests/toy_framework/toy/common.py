"""What the toy's kinds share: the dtype a job's numbers are rounded to, central differences."""

import numpy as np

DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16}


def rounded(a, dtype: str) -> np.ndarray:
    return np.asarray(np.asarray(a, dtype=np.float64).astype(DTYPES[dtype]), dtype=np.float64)


def central_difference(x: np.ndarray, f, h: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences, in float64."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        keep = x[i]
        x[i] = keep + h
        up = f()
        x[i] = keep - h
        down = f()
        x[i] = keep
        g[i] = (up - down) / (2 * h)
    return g
