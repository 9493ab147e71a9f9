"""Fit the heat pump's Carnot efficiency factor to real heat pumps (hplib database).

hplib (FZJ-IEK3-VSA/hplib, MIT; database CC BY 4.0 from Heat Pump Keymark test data) fits every
unit's COP as ``COP = p1*T_in + p2*T_out + p3 + p4*T_amb`` (degC: source inlet, supply outlet,
outdoor air). For each water/water and brine/water unit this script evaluates that fit on a
grid of source and supply temperatures inside the tested range and finds the factor ``eta``
that best matches ``eta * T_out / (T_out - (T_in - approach))`` (kelvin), in the least-squares
sense on relative error (``eta = mean(COP / COP_carnot)``). The median over units is the
optimiser's default (:data:`optimizer.params.FITTED_CARNOT_EFFICIENCY`).

Run: ``python -m optimizer.fit_carnot PATH/TO/hplib_database.csv [--out optimizer/carnot_fit.csv]``
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.carnot import carnot_cop

COP_COLUMNS = ("p1_COP [-]", "p2_COP [-]", "p3_COP [-]", "p4_COP [-]")
#: Source inlet temperatures of the fit, degC: brine (0) to ground water (10), as tested.
SOURCE_TEMPS_C = (0.0, 5.0, 10.0)
#: Supply temperatures of the fit, degC: Keymark's low (35) and medium (55) points.
SUPPLY_TEMPS_C = (35.0, 45.0, 55.0)
#: Outdoor temperature of the fit, degC: hplib's reference for brine and water units (full
#: load); milder air lowers the fitted COP of on/off units through part-load cycling.
AMBIENT_C = -7.0
#: Units whose own fit misses their test data by more than this are left out, %.
MAX_MAPE_PCT = 10.0


def water_source_units(database: pd.DataFrame) -> pd.DataFrame:
    """Water/water and brine/water units with a usable COP fit, duplicates removed."""
    units = database[
        database["Type"].isin(["Water/Water", "Brine/Water"]) & (database["Model"] != "Generic")
    ]
    units = units.dropna(subset=list(COP_COLUMNS))
    units = units[units["MAPE_COP"] <= MAX_MAPE_PCT]
    return units.drop_duplicates(subset=list(COP_COLUMNS))


def fit_units(
    units: pd.DataFrame, approach_k: float = 5.0, ambient_c: float = AMBIENT_C
) -> pd.DataFrame:
    """Per unit: fitted ``eta`` and the relative spread of ``COP / COP_carnot`` over the grid."""
    t_in, t_out = (a.ravel() for a in np.meshgrid(SOURCE_TEMPS_C, SUPPLY_TEMPS_C))
    carnot = carnot_cop(t_out, t_in - approach_k, 1.0)
    p = units[list(COP_COLUMNS)].to_numpy(float)
    cop = p[:, [0]] * t_in + p[:, [1]] * t_out + p[:, [2]] + p[:, [3]] * ambient_c
    ratio = cop / carnot
    return pd.DataFrame(
        {
            "manufacturer": units["Manufacturer"].str.strip().to_numpy(),
            "model": units["Model"].to_numpy(),
            "type": units["Type"].to_numpy(),
            "eta": ratio.mean(axis=1),
            "rel_spread": ratio.std(axis=1) / ratio.mean(axis=1),
        }
    )


def summarise(fits: pd.DataFrame, sensitivity: dict[str, float]) -> pd.DataFrame:
    """The fitted value and its spread, as ``quantity, value`` rows."""
    eta = fits["eta"].to_numpy()
    rows = {
        "units": float(len(eta)),
        "eta_median": float(np.median(eta)),
        "eta_mean": float(eta.mean()),
        "eta_std": float(eta.std(ddof=1)),
        "eta_p10": float(np.percentile(eta, 10)),
        "eta_p25": float(np.percentile(eta, 25)),
        "eta_p75": float(np.percentile(eta, 75)),
        "eta_p90": float(np.percentile(eta, 90)),
        "carnot_form_rel_error_mean": float(fits["rel_spread"].mean()),
        **sensitivity,
    }
    return pd.DataFrame({"quantity": list(rows), "value": list(rows.values())})


def run(database: pd.DataFrame) -> pd.DataFrame:
    """Fit and summarise, with the median at milder outdoor temperatures for comparison."""
    units = water_source_units(database)
    fits = fit_units(units)
    sensitivity = {
        f"eta_median_at_ambient_{t:+.0f}c": float(fit_units(units, ambient_c=t)["eta"].median())
        for t in (2.0, 7.0)
    }
    return summarise(fits, sensitivity)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path, help="hplib_database.csv")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("carnot_fit.csv"))
    args = parser.parse_args(argv)
    summary = run(pd.read_csv(args.database))
    summary.to_csv(args.out, index=False, float_format="%.4f")
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
