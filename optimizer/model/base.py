"""Shared pieces of the Pyomo model: index sets, mutable parameters that can be refreshed from
new :class:`~optimizer.data.ModelData`, and the unit scale.

The model works in kW and kWh (W and Wh times :data:`KW`): prices of a few hundred EUR/MWh then
give objective coefficients near 0.01-0.1 EUR per kW and step and bounds of 1-10,000, a range
HiGHS solves without scaling trouble. Read-back converts to W again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product
from typing import Any

import numpy as np
import pyomo.environ as pyo
from numpy.typing import ArrayLike, NDArray

from optimizer.data import ModelData

#: Model units per W (kW) and per Wh (kWh).
KW = 1e-3

Getter = Callable[[ModelData], ArrayLike]


def add_sets(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Steps ``T``, battery units ``B`` and PV units ``V``; ``m.dt`` is the step length, h."""
    m.T = pyo.Set(initialize=range(data.steps), ordered=True)
    m.B = pyo.Set(initialize=range(data.n_bat), ordered=True)
    m.V = pyo.Set(initialize=range(data.n_pv), ordered=True)
    m.dt = data.dt_h
    m.param_sources = []


def seal_params(m: pyo.ConcreteModel, data: ModelData) -> None:
    """Index the model's mutable Params once all are declared (for :func:`update_params`)."""
    m.param_items = param_items(m)
    m.param_last = param_values(m, data)


def add_param(
    m: pyo.ConcreteModel, name: str, sets: Sequence[Any], get: Getter, data: ModelData
) -> Any:
    """Declare a mutable Param whose values come from ``get(data)`` (shape = the sets' sizes).

    The getter is remembered, so :func:`update_params` refreshes the value for the next plan
    without rebuilding the model.
    """
    values = np.asarray(get(data), dtype=float).ravel()
    if not sets:
        param = pyo.Param(mutable=True, initialize=float(values[0]), within=pyo.Reals)
        m.add_component(name, param)
        m.param_sources.append(([param], get))
        return param
    keys: list[Any] = [k if len(k) > 1 else k[0] for k in product(*[list(s) for s in sets])]
    init = dict(zip(keys, values.tolist(), strict=True))
    param = pyo.Param(*sets, mutable=True, initialize=init, within=pyo.Reals)
    m.add_component(name, param)
    items = [param[k] for k in keys]
    m.param_sources.append((items, get))
    return param


def param_items(m: pyo.ConcreteModel) -> list[Any]:
    """Every mutable Param element of the model, in the order of :func:`param_values`."""
    return [item for items, _ in m.param_sources for item in items]


def param_values(m: pyo.ConcreteModel, data: ModelData) -> NDArray[np.float64]:
    """The values ``data`` gives every mutable Param, flat, in the order of :func:`param_items`."""
    parts = [np.asarray(get(data), dtype=float).ravel() for _, get in m.param_sources]
    return np.concatenate(parts) if parts else np.zeros(0)


def update_params(m: pyo.ConcreteModel, data: ModelData) -> NDArray[np.float64]:
    """Store the values of ``data`` in every mutable Param of the model; returns them flat.

    Only Params whose value changed are written, straight into the Param's value slot: the
    values are plain floats of a real-valued Param, so Pyomo's per-value validation (a domain
    look-up for each of ~10,000 Params on the demo site) has nothing to catch.
    """
    values = param_values(m, data)
    last = m.param_last
    items = m.param_items
    if last.shape != values.shape:
        raise ValueError(f"data gives {values.size} Param values, the model has {last.size}")
    changed = np.flatnonzero(values != last)
    for i, value in zip(changed.tolist(), values[changed].tolist(), strict=True):
        items[i]._value = value
    m.param_last = values
    return values
