"""The optimizer dashboard (``vpp-optimizer.json``), written by ``generate.py``.

Solve time, plan status, slack, fallbacks, forecast error, jobs.
"""

from __future__ import annotations

from typing import Any

from grafana import (
    SITE,
    Layout,
    dashboard,
    plan_status_stat,
    stat,
    state_timeline,
    thresholds,
    timeseries,
)

#: Colour threshold of the solve-time panel: 80 % of the demo site's time limit
#: (``[optimizer] time_limit_s`` = 10 s); the alert follows each site's own limit through
#: ``vpp_plan_time_limit_seconds``, which the panel draws too.
SOLVE_BUDGET_WARN_S = 8.0


def _mean(phase: str) -> tuple[str, str]:
    return (
        f"sum by (site) (rate(vpp_plan_{phase}_seconds_sum{{{SITE}}}[1h])) / "
        f"sum by (site) (rate(vpp_plan_{phase}_seconds_count{{{SITE}}}[1h]))",
        phase,
    )


def optimizer() -> dict[str, Any]:
    lay = Layout()
    budget = thresholds((None, "green"), (SOLVE_BUDGET_WARN_S, "red"))
    lay.add(
        plan_status_stat(),
        4,
        4,
    )
    lay.add(
        stat(
            "Last plan job",
            "Duration of the last plan job (forecast, build, solve, split).",
            (f'vpp_job_last_duration_seconds{{{SITE}, task="plan"}}', "{{site}}"),
            unit="s",
            thresholds=budget,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Fallback plans (24 h)",
            "Rule-based plans: the solver failed or ran out of time.",
            (f"increase(vpp_plan_fallbacks_total{{{SITE}}}[24h])", "{{site}}"),
            unit="none",
            decimals=0,
            thresholds=thresholds((None, "green"), (1, "orange")),
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Plans (24 h)",
            "Plans made.",
            (f"increase(vpp_plans_total{{{SITE}}}[24h])", "{{site}}"),
            unit="none",
            decimals=0,
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Objective",
            "Solver objective of the plan in force.",
            (f"vpp_plan_objective_euros{{{SITE}}}", "{{site}}"),
            unit="currencyEUR",
        ),
        4,
        4,
    )
    lay.add(
        stat(
            "Model size",
            "Variables and constraints of the plan's model.",
            (f"vpp_plan_variables{{{SITE}}}", "variables"),
            (f"vpp_plan_constraints{{{SITE}}}", "constraints"),
            unit="short",
        ),
        4,
        4,
    )
    lay.add(
        timeseries(
            "Solve time",
            f"Quantiles over the last hour, and each site's time limit; the alert fires at 80 % "
            f"of it (red above {SOLVE_BUDGET_WARN_S:.0f} s: 80 % of the demo site's 10 s).",
            (
                f"histogram_quantile(0.95, sum by (site, le) (rate(vpp_plan_solve_seconds_bucket"
                f"{{{SITE}}}[1h])))",
                "p95 {{site}}",
            ),
            (
                f"histogram_quantile(0.5, sum by (site, le) (rate(vpp_plan_solve_seconds_bucket"
                f"{{{SITE}}}[1h])))",
                "p50 {{site}}",
            ),
            (f"vpp_plan_time_limit_seconds{{{SITE}}}", "time limit {{site}}"),
            unit="s",
            thresholds=budget,
            thresholds_style="line+area",
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Time per phase",
            "Mean over the last hour: build (or update) the "
            "model, solve, split over devices, end to end.",
            *(_mean(p) for p in ("build", "solve", "split", "total")),
            unit="s",
        ),
        12,
        8,
    )
    lay.add(
        state_timeline(
            "Plan status",
            "Which status the plan in force had.",
            (f"vpp_plan_status{{{SITE}}}", "{{status}}"),
            [
                {
                    "type": "value",
                    "options": {
                        "0": {"text": "-", "color": "transparent"},
                        "1": {"text": "in force", "color": "green"},
                    },
                }
            ],
        ),
        12,
        7,
    )
    lay.add(
        timeseries(
            "Slack used",
            "Energy carried by each slack over the horizon; > 0 means "
            "the plan could not meet a limit or demand.",
            (f"vpp_plan_slack_watt_hours{{{SITE}}}", "{{slack}}"),
            unit="watth",
        ),
        12,
        7,
    )
    lay.add(
        timeseries(
            "Plans and fallbacks (1 h)",
            "Plans made and rule-based fallbacks.",
            (f"increase(vpp_plans_total{{{SITE}}}[1h])", "plans"),
            (f"increase(vpp_plan_fallbacks_total{{{SITE}}}[1h])", "fallbacks"),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Forecast error",
            "Last measured minus forecast value.",
            (f"vpp_forecast_error_watts{{{SITE}}}", "{{quantity}}"),
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Plan cost by part",
            "Over the plan's horizon.",
            (f"vpp_plan_cost_euros{{{SITE}}}", "{{part}}"),
            unit="currencyEUR",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "PV forecast: issued weight",
            "Weight of the issued PV forecasts against the rule forecast in today's plans "
            "(from both forecasts' errors on the 14 days before; absent without issued "
            "PV forecasts).",
            (f"vpp_forecast_pv_issued_weight_ratio{{{SITE}}}", "issued weight"),
            unit="percentunit",
            min=0,
            max=1,
        ),
        12,
        6,
    )
    lay.add(
        timeseries(
            "Heat forecast: level error",
            "How far each of the 14 days before today departed from the level of the three "
            "days before it; the plans keep a store reserve against that share of the heat "
            "from 0.1 % up (absent without temperature forecasts).",
            (f"vpp_forecast_heat_level_error_ratio{{{SITE}}}", "level error"),
            unit="percentunit",
            min=0,
        ),
        12,
        6,
    )
    lay.row("Jobs and data")
    lay.add(
        timeseries(
            "Job duration (p95)",
            "Per job, over the rate interval.",
            (
                f"histogram_quantile(0.95, sum by (site, task, le) (rate("
                f"vpp_job_duration_seconds_bucket{{{SITE}}}[$__rate_interval])))",
                "{{task}}",
            ),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Job failures and misses (1 h)",
            "Runs that failed or were skipped.",
            (f"increase(vpp_job_failures_total{{{SITE}}}[1h])", "failed {{task}}"),
            (f"increase(vpp_job_misses_total{{{SITE}}}[1h])", "missed {{task}}"),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Since each job last ran",
            "A stuck scheduler shows here.",
            (f"vpp_job_last_run_age_seconds{{{SITE}}}", "{{task}}"),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Data sources",
            "Time since the last good fetch; failures per hour; 1 = stale.",
            (f"vpp_source_last_success_age_seconds{{{SITE}}}", "age {{source}}"),
            (f"increase(vpp_source_failures_total{{{SITE}}}[1h])", "failures {{source}}"),
            (f"vpp_source_stale{{{SITE}}}", "stale {{source}}"),
            unit="short",
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Recorder errors (1 h)",
            "Records the recorder failed to store.",
            (f"increase(vpp_recorder_errors_total{{{SITE}}}[1h])", "{{site}}"),
            unit="none",
        ),
        12,
        8,
    )
    return dashboard(
        "vpp-optimizer",
        "vpp · optimizer",
        "Solve time, plan status, slack, fallbacks, forecast error, jobs.",
        lay,
    )
