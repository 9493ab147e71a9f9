"""A site's simulated devices served from several child processes, split by port.

One process serves a few thousand devices before its single core, not the controller, sets
the pace; benchmarks of 10,000 devices and more need the servers spread over processes so that
they measure the controller. :func:`shard_site` splits a site's devices by Modbus port (every
gateway stays whole, with its unit ids) into ``shards`` sites; :class:`ShardedFleet` serves
each from a :class:`~adapters.sim.fleet.FleetProcess`.

Scripts that use it need the usual ``if __name__ == "__main__":`` guard (children are spawned).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from adapters.sim.fleet import FleetProcess
from vpp.core.site import Site, parse_site


def shard_site(site: Site, shards: int) -> list[Site]:
    """``site`` split into at most ``shards`` sites by port, ports dealt round-robin.

    Every other section is copied; the grid meter stays named only in the shard that serves
    it. Raises ValueError for ``shards < 1``.
    """
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    ports = sorted({d.modbus.port for d in site.devices})
    data: dict[str, Any] = site.model_dump(mode="json")
    out = []
    for k in range(min(shards, len(ports))):
        mine = set(ports[k::shards])
        devices = [d for d in data["devices"] if d["modbus"]["port"] in mine]
        part = {**data, "devices": devices, "grid": dict(data["grid"])}
        if part["grid"].get("meter") not in {d["id"] for d in devices}:
            part["grid"]["meter"] = None
        out.append(parse_site(part, f"<shard {k + 1} of {shards}>"))
    return out


class ShardedFleet:
    """Serve ``site`` from ``shards`` child processes; a context manager that stops them all.

    options : passed to each :class:`FleetProcess` (``speed``, ``delay_s``, ``host``)
    """

    def __init__(self, site: Site, shards: int, **options: Any) -> None:
        self.sites = shard_site(site, shards)
        self._processes = [FleetProcess(part, **options) for part in self.sites]

    @property
    def pids(self) -> list[int | None]:
        return [p.pid for p in self._processes]

    def start(self, timeout_s: float = 120.0) -> None:
        """Start every shard and wait until all listen; stops them all if one fails."""
        try:
            for process in self._processes:
                process.start(timeout_s)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 10.0) -> None:
        for process in self._processes:
            process.stop(timeout_s)

    def __enter__(self) -> ShardedFleet:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
