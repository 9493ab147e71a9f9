"""Replay historic days offline: the controller as it would have run, against baselines.

``vpp replay --config FILE --from DATE --to DATE`` (see :mod:`vpp.cli.replay_cmd`) or
:func:`replay` runs, for every local calendar day of the period:

- the controller (:mod:`vpp.replay.loop`): at each quarter hour, the forecast as known then
  (:func:`vpp.forecast.forecast`, ``asof``; ``perfect`` on request), a plan by the same
  :class:`~optimizer.planner.Planner` ``vpp run`` uses, and the plan's row through the live
  dispatch and safety code (:mod:`vpp.replay.follow`);
- the baselines (:mod:`vpp.replay.baselines`): no control, rule-based self-consumption and
  perfect foresight day by day (the "oracle");
- the true lower bound (:mod:`vpp.replay.bound`): perfect foresight over the whole chain,
  ending where each strategy ended, against which regret and shares of savings are
  measured without valuing stored energy;
- each on the plant simulator (:mod:`vpp.replay.plant`, numba; plain-Python reference in
  :mod:`vpp.replay.reference`) fed with what really happened (:mod:`vpp.replay.layout`).

Choices, and why:

- days run in chains of ``ReplayOptions.chain_days`` (``--chain-days``, default 7): a
  chain's first day starts from the site file's initial state, each later day where the
  same strategy ended the day before, as the live controller runs on from midnight; chains
  depend on nothing outside them, so a year runs in parallel and gives the same figures on
  any number of workers (:mod:`vpp.replay.runner`); what a strategy has stored at a day's
  end is valued (:mod:`vpp.replay.kpi`). Days on their own (``chain_days = 1``) give
  every strategy its initial store back at midnight, valued at a low quantile of the day's
  prices, and never use what a strategy stored for the next morning: on the demo's 2018
  year that put the oracle's savings over no control at 18,239 EUR, against 16,531 EUR in
  weekly chains;
- the controller and the oracle run the live controller's intra-quarter correction
  (:mod:`vpp.replay.loop`), so a plan's forecast errors are handled as ``vpp run`` handles
  them;
- no peeking: a decision at ``t`` sees measured data before ``t`` and day-ahead prices as
  published at ``t``, the rule of :mod:`vpp.forecast`; the tests change everything not yet
  known at ``t`` and require every setpoint up to ``t`` to stay the same;
- in the first days of a file there is no history to forecast from: as in ``vpp run``, the
  plan fails, the devices run on their own defaults, and ``unplanned_steps`` counts it.

Results: :class:`ReplayResult` (KPI table, per-day results); the report folder is written by
:func:`vpp.replay.report.write_report` (imported on demand: it needs matplotlib).
"""

from __future__ import annotations

from vpp.replay.baselines import STRATEGIES
from vpp.replay.data import read_replay_inputs
from vpp.replay.parallel import ReplayResult, make_jobs, replay, run_jobs
from vpp.replay.runner import DayJob, DayResult, ReplayOptions, replay_day

__all__ = [
    "STRATEGIES",
    "DayJob",
    "DayResult",
    "ReplayOptions",
    "ReplayResult",
    "make_jobs",
    "read_replay_inputs",
    "replay",
    "replay_day",
    "run_jobs",
]
