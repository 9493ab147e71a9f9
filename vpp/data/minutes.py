"""Quarter-hour data inside the quarter hour: values per sub-step that keep each mean.

The input schema holds quarter-hour means. A plant that steps inside the quarter hour (the
replay plant, the simulated devices of the demo) needs values that vary from one sub-step to
the next without changing the energy of any quarter hour: :func:`within_quarter`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def within_quarter(means: F64, per: int, upper: F64 | float | None = None) -> F64:
    """Sub-step values from quarter-hour means (first axis), each quarter keeping its mean.

    Linear between the quarter hours' midpoints, shifted within each quarter hour to its
    mean, clipped at 0 (and at ``upper``, e.g. an inverter's rating) and scaled back to the
    mean where the clip took something off (after a clip at ``upper`` a quarter hour can keep
    a little less than its mean). Returns shape ``(n * per, ...)``.
    """
    n = means.shape[0]
    flat = np.asarray(means, dtype=float).reshape(n, -1)
    x = (np.arange(n * per) + 0.5) / per
    centres = np.arange(n) + 0.5
    lin = np.column_stack([np.interp(x, centres, flat[:, j]) for j in range(flat.shape[1])])
    lin = lin.reshape(n, per, -1)
    lin += (flat - lin.mean(axis=1))[:, None, :]
    np.maximum(lin, 0.0, out=lin)
    for _ in range(3):  # clipping and scaling settle within a few rounds
        mean = lin.mean(axis=1)
        scale = np.divide(flat, mean, out=np.ones_like(flat), where=mean > 0)
        lin *= scale[:, None, :]
        if upper is None:
            break
        np.minimum(lin, np.broadcast_to(upper, flat.shape[1:]), out=lin)
    out: F64 = lin.reshape((n * per, *means.shape[1:]))
    return out
