"""``vpp replay``: run the controller over historic days and compare it with baselines
(see :mod:`vpp.replay`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit
from vpp.cli.paths import creatable_folder_problem
from vpp.data import InputDataError
from vpp.data.clouds import CloudParams
from vpp.replay.data import read_replay_inputs
from vpp.replay.parallel import ReplayResult, days_between, replay
from vpp.replay.runner import DayResult, ReplayOptions
from vpp.signals.model import Signal, SignalError
from vpp.signals.recorded import read_signals


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date like 2018-05-16", param_hint=option
        ) from None


def totals_table(result: ReplayResult) -> Table:
    """The total row of each strategy."""
    k = result.kpis
    table = Table(
        title=f"replay {result.days[0].day} .. {result.days[-1].day} "
        f"({len(result.days)} days, {result.wall_s:,.0f} s)"
    )
    cols = (
        ("cost_eur", "cost EUR", 0),
        ("regret_eur", "regret EUR", 0),
        ("share_vs_no_control_pct", "share vs no ctl %", 1),
        ("share_vs_self_consumption_pct", "share vs self-cons. %", 1),
        ("capture_pct", "adj. oracle capture %", 1),
        ("grid_import_mwh", "import MWh", 2),
        ("grid_export_mwh", "export MWh", 2),
        ("autarky_pct", "autarky %", 1),
        ("co2_t", "CO2 t", 2),
        ("boiler_heat_mwh", "boiler MWh", 2),
    )
    table.add_column("strategy", no_wrap=True)
    for _, head, _ in cols:
        table.add_column(head, justify="right")
    for _, row in k[k["day"] == "total"].iterrows():
        cells = [f"{float(row[c]):,.{d}f}" for c, _, d in cols]
        table.add_row(str(row["strategy"]), *cells)
    return table


@app.command("replay")
def replay_command(
    from_: Annotated[str, typer.Option("--from", help="First local day, YYYY-MM-DD")],
    to: Annotated[str, typer.Option("--to", help="Last local day (included), YYYY-MM-DD")],
    config: Annotated[Path, typer.Option("--config", help="Site TOML file")] = DEFAULT_CONFIG,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Input file or folder in the input schema (year files, exported "
            "days); default: the site's run.inputs_file, else the shipped year",
        ),
    ] = None,
    mode: Annotated[
        str,
        typer.Option("--forecast", help="Controller forecasts: asof (as known then) or perfect"),
    ] = "asof",
    forecaster: Annotated[
        str | None,
        typer.Option(
            "--forecaster",
            help="rules or learned: the controller's forecast method, instead of the site "
            "file's [forecast] method (see docs/forecasts.md)",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Report folder")] = Path("replay-report"),
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Local worker processes (default: one per CPU)"),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask", help="Scheduler address of a Dask distributed cluster, tcp://host:port"
        ),
    ] = None,
    chain_days: Annotated[
        int,
        typer.Option(
            "--chain-days",
            min=1,
            help="Days per chain: within a chain each day starts where the day before ended; "
            "chains run in parallel (1: every day on its own from the site file's state)",
        ),
    ] = ReplayOptions().chain_days,
    month_chains: Annotated[
        bool,
        typer.Option(
            "--month-chains/--across-months",
            help="Start a new chain on every month's first day, so that each month's figures "
            "(kpis_monthly.csv) are measured against the month's own bound",
        ),
    ] = True,
    signals: Annotated[
        Path | None,
        typer.Option(
            "--signals",
            help="CSV of recorded grid-operator signals to apply (see vpp/signals/recorded.py); "
            "the law's rules for the site's PV apply in any case",
        ),
    ] = None,
    pv_clouds: Annotated[
        int | None,
        typer.Option(
            "--pv-clouds",
            metavar="SEED",
            help="PV per inverter from its roof and a minute cloud process with this seed "
            "(vpp/data/clouds.py); default: every inverter follows the data's PV profile",
        ),
    ] = None,
) -> None:
    """Replay historic days: the controller as it would have run, no control,
    self-consumption and perfect foresight, with KPIs and a report folder."""
    first, last = _day(from_, "--from"), _day(to, "--to")
    if mode not in ("asof", "perfect"):
        raise typer.BadParameter(f"{mode!r}: use asof or perfect", param_hint="--forecast")
    if forecaster not in (None, "rules", "learned"):
        raise typer.BadParameter(f"{forecaster!r}: use rules or learned", param_hint="--forecaster")
    site = load_or_exit(config, offline=True)
    if forecaster is not None:
        method = site.forecast.model_copy(update={"method": forecaster})
        site = site.model_copy(update={"forecast": method})
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if (problem := creatable_folder_problem(out)) is not None:  # before hours of replay
        err.print(f"[bold red]replay[/]: --out {escape(str(out))}: {escape(problem)}")
        raise typer.Exit(1)
    try:
        days = days_between(first, last)
        inputs = read_replay_inputs(site, first, last, data)
    except (InputDataError, ValueError) as exc:
        text = exc.summary() if isinstance(exc, InputDataError) else str(exc)
        err.print(f"[bold red]replay[/]: {escape(text)}", markup=True)
        raise typer.Exit(1) from None
    recorded: tuple[Signal, ...] = ()
    if signals is not None:
        try:
            recorded = read_signals(signals, site)
        except SignalError as exc:
            err.print(f"[bold red]replay[/]: --signals {escape(str(exc))}")
            raise typer.Exit(1) from None
    options = ReplayOptions(
        mode="perfect" if mode == "perfect" else "asof",
        chain_days=chain_days,
        month_chains=month_chains,
        signals=recorded,
        clouds=None if pv_clouds is None else CloudParams(seed=pv_clouds),
    )
    columns = (
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("replaying days", total=len(days))

        def advance(result: DayResult) -> None:
            progress.advance(task)

        try:
            result = replay(site, inputs, first, last, options, workers, dask, advance)
        except ValueError as exc:
            err.print(f"[bold red]replay[/]: {exc}")
            raise typer.Exit(1) from None
    from vpp.replay.report import write_report  # matplotlib: only when a report is written

    files = write_report(result, out)
    console = Console(highlight=False, soft_wrap=True)
    console.print(totals_table(result))
    console.print(f"wrote {len(files)} files to {out} (open {out / 'index.html'})")
