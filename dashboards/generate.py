"""Write the Grafana dashboards of this folder: ``python dashboards/generate.py``.

Six dashboards for grid operators, each filtered by site (and device where it applies), one
module each:

- ``vpp-overview.json``   power flows, grid exchange against its limit, prices, plan vs actual
  (``board_overview.py``)
- ``vpp-devices.json``    power, state of charge and comms health per device, worst first
  (``board_devices.py``)
- ``vpp-heat.json``       waste heat offered and used, heat pump power and COP, store, boiler
  (``board_heat.py``)
- ``vpp-optimizer.json``  solve time, plan status, slack, fallbacks, forecast error, jobs
  (``board_optimizer.py``)
- ``vpp-signals.json``    grid-operator signals in force, compliance, conflicts, sources
  (``board_signals.py``)
- ``vpp-city.json``       city coordinator: agents, health, targets vs delivered, messages
  (``board_city.py``)

Panels are built with the helpers of ``grafana.py``. Metric names and units are those of
``vpp/METRICS.md``. The tests check that the JSON files are what this script writes, so edit
the board modules and re-run it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from board_city import city
from board_devices import devices
from board_heat import heat
from board_optimizer import optimizer
from board_overview import overview
from board_signals import signals

HERE = Path(__file__).resolve().parent
GRAFANA_DIR = HERE / "grafana"

#: Every dashboard: its file under grafana/ and the function that makes it.
BOARDS: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("vpp-overview.json", overview),
    ("vpp-devices.json", devices),
    ("vpp-heat.json", heat),
    ("vpp-optimizer.json", optimizer),
    ("vpp-signals.json", signals),
    ("vpp-city.json", city),
]
DASHBOARDS = dict(BOARDS)


def render(make: Callable[[], dict[str, Any]]) -> str:
    """One dashboard as the text of its file."""
    return json.dumps(make(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    GRAFANA_DIR.mkdir(exist_ok=True)
    for name, make in BOARDS:
        (GRAFANA_DIR / name).write_text(render(make), encoding="utf-8")
        print(f"wrote {GRAFANA_DIR / name}")


if __name__ == "__main__":
    main()
