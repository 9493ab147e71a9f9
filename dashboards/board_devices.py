"""The devices dashboard (``vpp-devices.json``), written by ``generate.py``.

Power, state of charge and comms health per device, worst first.
"""

from __future__ import annotations

from typing import Any

from grafana import (
    DEVICE,
    Layout,
    bargauge,
    dashboard,
    dashed,
    stat,
    table,
    thresholds,
    timeseries,
)


def devices() -> dict[str, Any]:
    lay = Layout()
    lay.add(
        table(
            "Comms health, worst first",
            "One row per device: sorted by failed polls in a row.",
            [
                (f"vpp_device_consecutive_failures{{{DEVICE}}}", "Failures in a row", "none"),
                (f"vpp_device_up{{{DEVICE}}}", "Up", "bool_on_off"),
                (f"vpp_device_last_success_age_seconds{{{DEVICE}}}", "Last good poll", "s"),
                (f"increase(vpp_device_comm_errors_total{{{DEVICE}}}[1h])", "Errors (1 h)", "none"),
                (f"vpp_device_poll_latency_seconds{{{DEVICE}}}", "Poll latency", "s"),
                (f"vpp_device_power_watts{{{DEVICE}}}", "Power", "watt"),
            ],
            sort_by="Failures in a row",
        ),
        24,
        10,
    )
    lay.add(
        bargauge(
            "Longest since a good poll",
            "The ten devices heard from least recently.",
            (f"topk(10, vpp_device_last_success_age_seconds{{{DEVICE}}})", "{{device}}"),
            "s",
            thresholds=thresholds((None, "green"), (60, "orange"), (300, "red")),
        ),
        8,
        8,
    )
    lay.add(
        bargauge(
            "Lowest state of charge",
            "The ten emptiest batteries.",
            (f"bottomk(10, vpp_device_soc_ratio{{{DEVICE}}})", "{{device}}"),
            "percentunit",
            min=0,
            max=1,
            thresholds=thresholds((None, "red"), (0.15, "orange"), (0.3, "green")),
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Circuit breakers",
            "Devices per breaker state; open = skipped.",
            (f"sum by (site, state) (vpp_device_breaker_state{{{DEVICE}}})", "{{state}} {{site}}"),
            unit="none",
            stack=True,
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Power per device",
            "Sign by kind: PV output, battery > 0 discharging, "
            "meter > 0 importing, heat pump input, data centre IT power.",
            (f"vpp_device_power_watts{{{DEVICE}}}", "{{device}}"),
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "State of charge",
            "Batteries, as last read.",
            (f"vpp_device_soc_ratio{{{DEVICE}}}", "{{device}}"),
            unit="percentunit",
            min=0,
            max=1,
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "Comm errors",
            "Failed polls per second (skipped polls of an open breaker do not count).",
            (
                f"sum by (site, device) (rate(vpp_device_comm_errors_total{{{DEVICE}}}"
                "[$__rate_interval]))",
                "{{device}}",
            ),
            unit="none",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "Poll latency",
            "Duration of the last good poll of each device.",
            (f"vpp_device_poll_latency_seconds{{{DEVICE}}}", "{{device}}"),
            unit="s",
        ),
        8,
        8,
    )
    lay.add(
        timeseries(
            "PV limits in force",
            "Share of rated power; absent = no limit.",
            (f"vpp_device_pv_limit_ratio{{{DEVICE}}}", "{{device}}"),
            unit="percentunit",
            min=0,
            max=1,
        ),
        8,
        8,
    )
    lay.row("Setpoints")
    lay.add(
        timeseries(
            "Power setpoints and read-back",
            "Requested (after safety clamps), read back, and the measured power they ask for.",
            (
                f'vpp_setpoint_watts{{{DEVICE}, stage=~"requested|read_back"}}',
                "{{device}} {{stage}}",
            ),
            (f"vpp_setpoint_measured_watts{{{DEVICE}}}", "{{device}} measured"),
            overrides=[dashed("/read_back/", "blue")],
        ),
        12,
        9,
    )
    lay.add(
        timeseries(
            "PV limit setpoints",
            "Requested and read-back PV limits.",
            (
                f'vpp_setpoint_ratio{{{DEVICE}, stage=~"requested|read_back"}}',
                "{{device}} {{stage}}",
            ),
            unit="percentunit",
            min=0,
            max=1,
        ),
        12,
        9,
    )
    lay.add(
        stat(
            "Setpoints not confirmed",
            "Devices whose last setpoint was refused or read back differently.",
            (f"sum by (site) (1 - vpp_setpoint_ok{{{DEVICE}}})", "{{site}}"),
            unit="none",
            thresholds=thresholds((None, "green"), (1, "orange")),
        ),
        6,
        8,
    )
    lay.add(
        timeseries(
            "Setpoint problems (1 h)",
            "Read-back mismatches, safety clamps and refusals in the last hour, per device.",
            (
                f"increase(vpp_setpoint_readback_mismatches_total{{{DEVICE}}}[1h])",
                "mismatch {{device}}",
            ),
            (f"increase(vpp_setpoint_clamps_total{{{DEVICE}}}[1h])", "clamped {{device}}"),
            (f"increase(vpp_setpoint_refusals_total{{{DEVICE}}}[1h])", "refused {{device}}"),
            unit="none",
            noValue="0",
        ),
        18,
        8,
    )
    return dashboard(
        "vpp-devices",
        "vpp · devices",
        "Power, state of charge and comms health per device, worst first.",
        lay,
        with_device=True,
    )
