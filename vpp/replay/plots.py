"""PNG plots of a replay. Times in the site's local time zone, powers in kW, energies in kWh
or MWh. Figures are drawn with matplotlib's object API (no pyplot): no display and no global
figure state, so plots can be made from any thread or process."""

from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from vpp.replay.baselines import BOUND, CONTROLLER, NO_CONTROL, ORACLE, SELF_CONSUMPTION

#: One colour per strategy, the same in every plot.
COLOURS = {
    NO_CONTROL: "#7f7f7f",
    SELF_CONSUMPTION: "#2ca02c",
    CONTROLLER: "#1f77b4",
    ORACLE: "#d62728",
    BOUND: "#000000",
}
LABELS = {
    NO_CONTROL: "no control",
    SELF_CONSUMPTION: "self-consumption",
    CONTROLLER: "controller",
    ORACLE: "oracle (perfect foresight, day by day)",
    BOUND: "bound (perfect foresight over the chain)",
}


def _local(frame: pd.DataFrame, tz: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(frame.index).tz_convert(tz)


def _power(ax: Axes, df: pd.DataFrame, x: pd.DatetimeIndex) -> None:
    pairs = (
        ("grid_w", "grid", "#1f77b4"),
        ("battery_w", "battery", "#ff7f0e"),
        ("heat_pump_el_w", "heat pump", "#9467bd"),
    )
    for col, label, colour in pairs:
        ax.plot(x, df[col] / 1e3, color=colour, lw=1.4, label=f"{label} actual")
        ax.plot(
            x, df[f"planned_{col}"] / 1e3, color=colour, lw=1.0, ls="--", label=f"{label} planned"
        )
    ax.plot(x, df["pv_w"] / 1e3, color="#bcbd22", lw=1.2, label="PV")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel("kW")
    ax.set_title("Controller: plan vs actual power (grid > 0 imports, battery > 0 discharges)")
    ax.legend(ncol=4, fontsize=7, loc="upper left")


def _energy(ax: Axes, df: pd.DataFrame, x: pd.DatetimeIndex) -> None:
    ax.plot(x, df["battery_soc_wh"] / 1e3, color="#ff7f0e", lw=1.4, label="batteries actual")
    ax.plot(
        x,
        df["planned_battery_soc_wh"] / 1e3,
        color="#ff7f0e",
        ls="--",
        lw=1.0,
        label="batteries planned",
    )
    ax.set_ylabel("battery kWh")
    right = ax.twinx()
    right.plot(x, df["store_wh"] / 1e6, color="#8c564b", lw=1.4, label="store actual")
    right.plot(
        x, df["planned_store_wh"] / 1e6, color="#8c564b", ls="--", lw=1.0, label="store planned"
    )
    right.set_ylabel("store MWh")
    ax.set_title("Controller: stored energy at the end of each quarter hour")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], ncol=4, fontsize=7, loc="upper left")


def _strategies(ax: Axes, frames: dict[str, pd.DataFrame], x: pd.DatetimeIndex) -> None:
    for name, df in frames.items():
        ax.plot(x, df["grid_w"] / 1e3, color=COLOURS.get(name), lw=1.1, label=LABELS.get(name))
    ax.axhline(0, color="black", lw=0.5)
    ax.set_ylabel("kW")
    ax.set_title("Grid exchange by strategy")
    ax.legend(ncol=4, fontsize=7, loc="upper left")


def _prices(ax: Axes, df: pd.DataFrame, x: pd.DatetimeIndex) -> None:
    ax.step(x, df["price_import_eur_per_mwh"], where="post", label="import (with fees)")
    ax.step(x, df["price_export_eur_per_mwh"], where="post", label="export (less fees)")
    ax.set_ylabel("EUR/MWh")
    ax.set_title("Prices")
    ax.legend(fontsize=7, loc="upper left")


def plot_day(frames: dict[str, pd.DataFrame], day: str, tz: str, path: Path) -> Path:
    """Four panels for one day: plan vs actual power, stored energy, grid by strategy,
    prices."""
    ctl = frames[CONTROLLER]
    x = _local(ctl, tz)
    fig = Figure(figsize=(11, 13))
    axes = fig.subplots(4, 1, sharex=True)
    _power(axes[0], ctl, x)
    _energy(axes[1], ctl, x)
    _strategies(axes[2], frames, x)
    _prices(axes[3], ctl, x)
    axes[3].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=x.tz))  # type: ignore[no-untyped-call]
    axes[3].set_xlabel(f"local time ({tz})")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"Replay of {day}", fontsize=13)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def plot_summary(kpis: pd.DataFrame, path: Path) -> Path:
    """Savings over no control per day and accumulated, per strategy (EUR, storage change
    valued). Savings rather than shares of the oracle's: on days where even the oracle can
    save next to nothing (winter, the heat pump at full power all day) a share is noise."""
    days = kpis[kpis["day"] != "total"]
    savings = days.pivot(index="day", columns="strategy", values="savings_eur")
    savings = savings[[c for c in (SELF_CONSUMPTION, CONTROLLER, ORACLE) if c in savings]]
    total = kpis[(kpis["day"] == "total") & (kpis["strategy"] == CONTROLLER)]
    capture = float(total["capture_pct"].iloc[0]) if len(total) else float("nan")
    share = (
        float(total["share_vs_no_control_pct"].iloc[0])
        if len(total) and "share_vs_no_control_pct" in total
        else float("nan")
    )
    fig = Figure(figsize=(11, 7))
    top, bottom = fig.subplots(2, 1, sharex=True)
    x = range(len(savings))
    for name in savings.columns:
        style = {"color": COLOURS.get(str(name)), "label": LABELS.get(str(name), str(name))}
        top.plot(x, savings[name].to_numpy(float), marker="o", ms=3, lw=1.0, **style)
        bottom.plot(x, savings[name].cumsum().to_numpy(float), lw=1.6, **style)
    top.axhline(0, color="black", lw=0.5)
    top.set_ylabel("EUR per day")
    top.set_title("Savings over no control per day (storage change valued)")
    top.legend(fontsize=8)
    bottom.set_ylabel("EUR")
    bottom.set_title(
        f"Accumulated savings; the controller achieved {share:.1f} % of the bound's savings "
        f"over no control ({capture:.1f} % of the oracle's, storage valued)"
    )
    labels = [str(d) for d in savings.index]
    step = max(1, len(labels) // 15)
    bottom.set_xticks(list(x)[::step], labels[::step], rotation=45, ha="right")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path
