"""``vpp agent``, ``vpp coordinator`` and ``vpp city-demo``: the city over MQTT (docs/city.md)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import ssl
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from vpp.cli import app
from vpp.cli.config_cmd import DEFAULT_CONFIG, load_or_exit


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{text!r} is not HOST:PORT", param_hint="--broker")
    return host, int(port)


def _password(path: Path) -> str:
    return _secret(path, "--password-file")


def _secret(path: Path, hint: str) -> str:
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise typer.BadParameter(f"{path}: {exc.strerror}", param_hint=hint) from None
    if not text:
        raise typer.BadParameter(f"{path}: empty", param_hint=hint)
    return text


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def _clock(start: str | None, origin: float | None) -> tuple[datetime | None, float | None]:
    """``--start`` and ``--clock-origin``, checked (the origin needs a start)."""
    from vpp.cli.run_cmd import _parse_start

    start_at = _parse_start(start)
    if origin is not None:
        if not math.isfinite(origin) or origin <= 0:
            raise typer.BadParameter(f"must be a Unix time > 0, got {origin}",
                                     param_hint="--clock-origin")  # fmt: skip
        if start_at is None:
            raise typer.BadParameter("needs --start (what the clock reads then)",
                                     param_hint="--clock-origin")  # fmt: skip
    return start_at, origin


def _tls(ca: Path | None, cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The broker connection's TLS context, or None for plain MQTT (loopback)."""
    if ca is None and cert is None and key is None:
        return None
    from vpp.city.link import TlsError, tls_context

    try:
        return tls_context(ca, cert, key)
    except TlsError as exc:
        hint = str(exc).split(":", 1)[0]
        raise typer.BadParameter(str(exc).split(": ", 1)[1], param_hint=hint) from None


Broker = Annotated[str, typer.Option("--broker", help="MQTT broker HOST:PORT")]
TlsCa = Annotated[
    Path | None, typer.Option("--tls-ca", help="CA file to verify the broker (turns TLS on)")
]
TlsCert = Annotated[Path | None, typer.Option("--tls-cert", help="Client certificate (PEM)")]
TlsKey = Annotated[Path | None, typer.Option("--tls-key", help="Client private key (PEM)")]
ClockOrigin = Annotated[
    float | None,
    typer.Option(
        help="Unix time (s) at which the clock reads --start: processes given the same "
        "--start, --speed and --clock-origin share one clock"
    ),
]
PasswordFile = Annotated[
    Path, typer.Option("--password-file", help="File holding the broker password")
]


@app.command("agent")
def agent_command(
    agent_id: Annotated[str, typer.Option("--id", help="Agent id (its broker user name)")],
    broker: Broker,
    password_file: PasswordFile,
    config: Annotated[Path, typer.Option("--config", "-c", help="Site TOML file")] = DEFAULT_CONFIG,
    outbox: Annotated[Path | None, typer.Option(help="Outbox (SQLite)")] = None,
    outbox_max_mb: Annotated[
        float, typer.Option(help="Most payload MB the outbox keeps (oldest device summaries go)")
    ] = 1024.0,
    port_offset: Annotated[int, typer.Option(help="Add to every Modbus port")] = 0,
    speed: Annotated[float, typer.Option(help="Run K times faster than real time")] = 1.0,
    start: Annotated[str | None, typer.Option(help="Start time (ISO, with zone)")] = None,
    clock_origin: ClockOrigin = None,
    simulate: Annotated[bool | None, typer.Option("--simulate/--no-simulate")] = None,
    db: Annotated[Path | None, typer.Option(help="Recorder database (SQLite)")] = None,
    http_port: Annotated[int | None, typer.Option(help="Port of the page and /metrics")] = None,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """The district controller with its link to the city coordinator."""
    from vpp.app import RunOptions
    from vpp.city.link import LinkConfig
    from vpp.city.run import run_agent, shift_ports

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", agent_id):
        raise typer.BadParameter(f"{agent_id!r}: letters, digits, - and _", param_hint="--id")
    if speed <= 0:
        raise typer.BadParameter("must be > 0", param_hint="--speed")
    if not outbox_max_mb > 0:
        raise typer.BadParameter(f"must be > 0, got {outbox_max_mb}", param_hint="--outbox-max-mb")
    host, port = _broker(broker)
    link = LinkConfig(host, port, agent_id, _password(password_file), agent_id,
                      tls=_tls(tls_ca, tls_cert, tls_key))  # fmt: skip
    _logging(log_level)
    site = shift_ports(load_or_exit(config), port_offset)
    start_at, origin = _clock(start, clock_origin)
    opts = RunOptions(speed=speed, simulate=simulate, db_path=str(db) if db else None,
                      http_port=http_port, start=start_at, clock_origin=origin)  # fmt: skip
    box = outbox or Path(f"{agent_id}.outbox.db")
    asyncio.run(run_agent(site, opts, agent_id, link, box, int(outbox_max_mb * 1e6)))


@app.command("coordinator")
def coordinator_command(
    agents: Annotated[str, typer.Option(help="Agent ids, comma-separated")],
    broker: Broker,
    password_file: PasswordFile,
    db: Annotated[str | None, typer.Option(help="PostgreSQL DSN of the history")] = None,
    import_limit_w: Annotated[float, typer.Option(help="Substation import limit, W")] = 2e6,
    export_limit_w: Annotated[float, typer.Option(help="Substation export limit, W")] = 1e6,
    grace_s: Annotated[float, typer.Option(help="Wait for late agents, s")] = 20.0,
    http_port: Annotated[int, typer.Option(help="Port of the city page and /metrics")] = 9300,
    clock: Annotated[
        str, typer.Option(help="wall, or agents: the newest telemetry time (simulated days)")
    ] = "wall",
    speed: Annotated[
        float, typer.Option(help="With --start: a clock K times faster than real time")
    ] = 1.0,
    start: Annotated[str | None, typer.Option(help="Start time (ISO, with zone)")] = None,
    clock_origin: ClockOrigin = None,
    signals: Annotated[
        Path | None, typer.Option(help="City-level grid signals for the agents (JSON)")
    ] = None,
    api_token_file: Annotated[
        Path | None,
        typer.Option(help="File holding the operator API's write token (VPP_API_TOKEN wins)"),
    ] = None,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning")] = "info",
) -> None:
    """Plan the city over the agents' flexibility and send each its targets."""
    from vpp.city.broker import COORDINATOR_USER
    from vpp.city.coordinator import CoordinatorConfig
    from vpp.city.link import LinkConfig
    from vpp.city.run import run_coordinator

    names = [a.strip() for a in agents.split(",") if a.strip()]
    if not names:
        raise typer.BadParameter("no agent ids", param_hint="--agents")
    for limit, hint in ((import_limit_w, "--import-limit-w"), (export_limit_w, "--export-limit-w")):
        if not limit > 0:
            raise typer.BadParameter(f"must be > 0, got {limit}", param_hint=hint)
    if clock not in ("wall", "agents"):
        raise typer.BadParameter(f"wall or agents, got {clock!r}", param_hint="--clock")
    if speed <= 0:
        raise typer.BadParameter("must be > 0", param_hint="--speed")
    start_at, origin = _clock(start, clock_origin)
    now = None
    if start_at is not None or speed != 1.0:
        from vpp.core.clock import ScaledClock, SystemClock

        now = ScaledClock(start_at or SystemClock().now(), speed, origin).now
    host, port = _broker(broker)
    link = LinkConfig(host, port, COORDINATOR_USER, _password(password_file), COORDINATOR_USER,
                      tls=_tls(tls_ca, tls_cert, tls_key))  # fmt: skip
    _logging(log_level)
    cfg = CoordinatorConfig(names, import_limit_w, export_limit_w, grace_s=grace_s, clock=clock)
    if signals is not None:
        from vpp.city.signals import read_city_signals

        try:
            cfg.signals = read_city_signals(signals, names)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--signals") from None
    token = os.environ.get("VPP_API_TOKEN") or None
    if token is None and api_token_file is not None:
        token = _secret(api_token_file, "--api-token-file")
    asyncio.run(run_coordinator(cfg, link, db, "127.0.0.1", http_port, token, now))


@app.command("city-demo")
def city_demo_command(
    agents: Annotated[int, typer.Option(help="Districts (each the demo site)")] = 3,
    speed: Annotated[float, typer.Option(help="Run K times faster than real time")] = 1.0,
    mqtt_port: Annotated[int, typer.Option(help="Broker port")] = 18830,
    pg_port: Annotated[int, typer.Option(help="PostgreSQL port")] = 15432,
    http_port: Annotated[int, typer.Option(help="City page; agents on the next ports")] = 9300,
    config: Annotated[Path, typer.Option("--config", "-c")] = DEFAULT_CONFIG,
) -> None:
    """Broker, database, coordinator and a few agents on loopback, until Ctrl-C."""
    from vpp.city.run import demo

    if not 1 <= agents <= 9:
        raise typer.BadParameter("1..9", param_hint="--agents")
    demo(agents, speed, mqtt_port, pg_port, http_port, config)
