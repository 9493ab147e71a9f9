"""Constants of the optimiser that the site file does not carry, and per-call solve options.

:class:`OptimizerParams` holds modelling choices (penalty prices, terminal valuation, clustering
bands, COP limits); every field has its unit in its name and a reason in its docstring.
:class:`SolveOptions` holds what a caller may change per call: time limit, mode, and the two
switches that let tests force a timeout or a solver failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

#: Carnot efficiency fitted to the water/water and brine/water heat pumps of the hplib database
#: (median over 110 units, full-load point, source 0-10 degC, supply 35-55 degC, 5 K evaporator
#: approach). ``optimizer/fit_carnot.py`` recomputes it; ``optimizer/carnot_fit.csv`` holds the
#: result with its spread. Used when the site file leaves ``carnot_efficiency`` at its default.
FITTED_CARNOT_EFFICIENCY = 0.57


@dataclass(frozen=True)
class OptimizerParams:
    """Modelling constants; the defaults suit a district of homes, PV and batteries."""

    #: Penalty for electric demand that cannot be served (import cap below must-run load), EUR/MWh.
    #: Above the EU day-ahead price cap (4,000 EUR/MWh) plus fees, so it is used only when needed.
    unserved_el_penalty_eur_per_mwh: float = 10_000.0
    #: Penalty for surplus generation that can neither be used nor exported (export cap below
    #: the PV inverters' minimum limits), EUR/MWh; above any price so it is a last resort.
    spilled_el_penalty_eur_per_mwh: float = 10_000.0
    #: Quantile of the horizon's prices used to value energy left at the horizon's end. A low
    #: quantile keeps the terminal value below what the energy would fetch on most future days,
    #: so the plan neither hoards nor empties the stores at the end.
    terminal_price_quantile: float = 0.25
    #: The store's heat-risk reserve (:func:`optimizer.data.set_heat_risk`): each MWh by which
    #: the store falls short of the heat-forecast error it may have to cover is priced at the
    #: boiler's heat times this chance. 0.35 is the mean chance that a normally distributed
    #: error exceeds a reserve between nothing and its mean absolute size (0.8 sigma).
    heat_short_chance: float = 0.35
    #: Level errors of the heat forecast below this share are taken as none (no reserve).
    heat_error_min: float = 0.001
    #: Highest COP the model uses. The Carnot form keeps growing as the lift shrinks, but the fitted
    #: units cover lifts of 25-55 K and published data-centre heat pumps reach 5.5 at a 15 K lift.
    cop_max: float = 6.0
    #: Lowest COP at which the heat pump is worth running; below it the unit is treated as off.
    cop_min: float = 1.2
    #: Batteries whose hours at full discharge (capacity / max discharge power) differ by less
    #: than this factor share a virtual unit (bands 1.0-1.5 h, 1.5-2.25 h, ...).
    battery_ratio_band_factor: float = 1.5
    #: Efficiencies are rounded to this step when grouping batteries into units.
    efficiency_band: float = 0.02
    #: Wear costs are rounded to this step, EUR/MWh, when grouping batteries into units.
    wear_band_eur_per_mwh: float = 5.0
    #: Battery clusters are cut into groups by fill level (see
    #: :func:`optimizer.aggregate.cluster_batteries`): ``ceil(members / soc_group_members)``
    #: groups, at least ``soc_groups_min`` and at most ``soc_groups``. Members of a group then
    #: start close together, so the units' plan splits back onto the devices closely: the
    #: split plan is within 0.007 % of the device-level optimum at 1,000 devices (4 groups
    #: with full-power tapers: 0.6 %; bench/optimizer_scaling.py). Groups of 2 members: with
    #: 4 the benchmark fleets' clusters of 11-16 members got 4 groups, and the gap grew to
    #: 0.05 % at 1,000 devices and 0.08 % at 500; the demo's clusters of 2-7 members keep 4
    #: groups either way.
    soc_groups: int = 16
    soc_groups_min: int = 4
    soc_group_members: int = 2
    #: Units with at least this many members get taper lines (their power falls as members run
    #: full or empty). With fewer members the curve is a few coarse steps that the lines
    #: approximate too cautiously, while the split rounds settle such small units in a few
    #: re-solves.
    taper_min_members: int = 8
    #: How units taper near full and empty: ``"none"`` (the split rounds settle what members
    #: cannot follow), ``"full_power"`` (as if the unit ran at full power from now,
    #: :func:`optimizer.aggregate.taper_lines`) or ``"share"`` (the most the members can give
    #: under the split's sharing, :func:`optimizer.aggregate.share_lines`). Measured on the
    #: benchmark fleets with 16 groups: full-power lines hold back power over the whole
    #: horizon (0.25 % dearer plans at 10,000 devices), share lines cost less but leave more
    #: to the split rounds; no taper gave the cheapest device plans.
    taper: Literal["share", "full_power", "none"] = "none"
    #: Rounds of "split, tighten the units that could not be split, re-solve" before the plan
    #: accepts what the devices can do and lets the grid take the difference.
    split_rounds: int = 10
    #: The rounds also stop once the energy the devices cannot follow is below this share of
    #: the energy the battery units move (sum of |net power| * step): at 10,000 devices
    #: (~120 MWh moved) 1e-5 is 1.2 kWh, a few cents at any price, where another round costs
    #: ~40 ms (bench/plan_speed.py). 0 runs the rounds until nothing at all is left.
    split_left_share: float = 1e-5
    #: Power below which a flow counts as zero when checking splits and simultaneity, W.
    tolerance_w: float = 1.0


@dataclass(frozen=True)
class SolveOptions:
    """Per-call options. ``None`` fields fall back to the site's ``[optimizer]`` settings."""

    #: Wall-clock limit handed to HiGHS, s. Tests pass ~0 to force the time-limit fallback.
    #: ``math.inf`` turns it off (replay does, see ``iteration_limit``).
    time_limit_s: float | None = None
    #: A work limit that does not depend on the machine's speed or load: at most this many
    #: simplex (and interior-point) iterations per solve, and for a MILP this many
    #: branch-and-bound nodes; reaching it fails the solve as the time limit does. ``None``:
    #: no such limit (live planning keeps only its wall-clock limit). Replay sets it and turns
    #: the wall-clock limit off, so that a replayed plan, and with it the replay's result,
    #: is the same on a busy machine as on an idle one (:data:`DETERMINISTIC`).
    iteration_limit: int | None = None
    #: ``"aggregated"`` plans clusters of similar devices, ``"device"`` plans each device.
    mode: Literal["aggregated", "device"] | None = None
    #: Binaries for battery charge/discharge exclusion and the heat pump's minimum part load.
    milp: bool | None = None
    #: Make the solve fail as if HiGHS had returned an error (for tests of the fallback).
    force_failure: bool = False
    #: Threads for HiGHS; 1 keeps the controller from starving other work on a small machine.
    threads: int = 1
    #: Relative MIP gap when ``milp`` is on.
    mip_rel_gap: float = 1e-4
    #: How the LP reaches HiGHS: ``"direct"`` (arrays straight into highspy, the default for
    #: LPs) or ``"pyomo"`` (the model of record); a MILP always goes through Pyomo. See
    #: :mod:`optimizer.backend`.
    builder: Literal["direct", "pyomo"] | None = None
    #: Where the direct build's simplex starts: ``"idle"`` (a new model from the
    #: batteries-idle basis, a re-plan some steps later from the last basis moved by those
    #: steps; :mod:`optimizer.basis`) or ``"slack"`` (HiGHS's own start for a new model, the
    #: last basis as it is for a re-plan), the baseline ``bench/plan_speed.py`` compares with.
    start: Literal["idle", "slack"] = "idle"


#: Simplex iterations per solve that replay allows (:data:`DETERMINISTIC`). The demo site's
#: plans take about 250 iterations from the last basis and 2,700 from scratch; the limit is
#: there so that a pathological solve still ends, never to cut a normal one.
REPLAY_ITERATION_LIMIT = 200_000

#: Solve options of replay: no wall-clock limit, a deterministic work limit instead.
DETERMINISTIC = SolveOptions(time_limit_s=math.inf, iteration_limit=REPLAY_ITERATION_LIMIT)
