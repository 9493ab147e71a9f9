"""The grid-signals dashboard (``vpp-signals.json``), written by ``generate.py``.

What grid operators want to see of their signals: what is in force, whether the plant
follows it (per device and at the grid connection), conflicts between signals, and whether
every source (control box, VTN) is alive or its devices are in the failsafe.
"""

from __future__ import annotations

from typing import Any

from grafana import SITE, Layout, dashboard, stat, table, thresholds, timeseries

#: "0 when absent" for series that exist only while a signal is in force.
ZERO = f"0 * sum by (site) (vpp_grid_signal_bounded_devices{{{SITE}}})"


def signals() -> dict[str, Any]:
    lay = Layout()
    lay.row("Now")
    lay.add(
        stat(
            "Signals in force",
            "Grid-operator signals active now, all sources.",
            (f"sum by (site) (vpp_grid_signal_active{{{SITE}}}) or {ZERO}", "{{site}}"),
            unit="none",
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Devices bounded",
            "Devices whose setpoints a signal bounds now.",
            (f"vpp_grid_signal_bounded_devices{{{SITE}}}", "{{site}}"),
            unit="none",
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Devices not following",
            "Devices whose held setpoint breaks a signal (or a §9 stage below an inverter's "
            "minimum). Alert VppGridSignalNotCompliant.",
            (f"vpp_grid_signal_not_compliant_devices{{{SITE}}}", "{{site}}"),
            unit="none",
            thresholds=thresholds((None, "green"), (1, "red")),
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Conflicts",
            "Places where active signals disagree now; the stricter one is enforced.",
            (f"vpp_grid_signal_conflicts_active{{{SITE}}}", "{{site}}"),
            unit="none",
            thresholds=thresholds((None, "green"), (1, "orange")),
        ),
        4,
        5,
    )
    lay.add(
        stat(
            "Sources in failsafe",
            "Signal sources silent past their heartbeat timeout: their devices are held at "
            "the failsafe limits.",
            (f"sum by (site) (vpp_grid_signal_source_silent{{{SITE}}}) or {ZERO}", "{{site}}"),
            unit="none",
            thresholds=thresholds((None, "green"), (1, "red")),
        ),
        8,
        5,
    )
    lay.row("Signals and compliance")
    lay.add(
        timeseries(
            "Signals in force by source and kind",
            "Count of active signals (control boxes, OpenADR events, operator, the law's rules).",
            (
                f"sum by (site, source, kind) (vpp_grid_signal_active{{{SITE}}})",
                "{{source}} {{kind}}",
            ),
            unit="none",
        ),
        12,
        8,
    )
    lay.add(
        timeseries(
            "Grid caps from signals against the exchange",
            "Import and export caps the signals set (absent: none) and the measured exchange.",
            (f"vpp_grid_signal_import_cap_watts{{{SITE}}}", "import cap"),
            (f"vpp_grid_signal_export_cap_watts{{{SITE}}}", "export cap"),
            (f"vpp_grid_import_watts{{{SITE}}}", "import"),
            (f"vpp_grid_export_watts{{{SITE}}}", "export"),
        ),
        12,
        8,
    )
    lay.add(
        table(
            "Compliance per device",
            "1 = the setpoint the device holds keeps its signal bounds; 0 = it does not.",
            [(f"vpp_grid_signal_compliant{{{SITE}}}", "compliant", "none")],
            "compliant",
            descending=False,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Conflicts and grid compliance",
            "Conflicts reported per hour; grid exchange within the signals' caps (1) or not (0).",
            (f"increase(vpp_grid_signal_conflicts_total{{{SITE}}}[1h])", "conflicts / h"),
            (
                f"max by (site) (vpp_grid_signal_grid_compliant{{{SITE}}}) or ({ZERO} + 1)",
                "grid compliant",
            ),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Sources: time since last answer",
            "Per control box or VTN; above its heartbeat timeout it is silent (failsafe).",
            (f"vpp_grid_signal_source_last_success_age_seconds{{{SITE}}}", "{{source}}"),
            unit="s",
        ),
        8,
        8,
    )
    return dashboard(
        "vpp-signals",
        "vpp · grid signals",
        "Grid-operator signals (§9 EEG, §14a EnWG, Solarspitzengesetz, OpenADR, operator): "
        "what is in force and whether the plant follows it.",
        lay,
    )
