"""The deployment files of ``config/deploy/``: the compose file (structure, and every file it
mounts exists and fits the service reading it), Prometheus and Alertmanager configs checked by
``promtool`` and ``amtool``, and the systemd unit checked by ``systemd-analyze verify``."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer.main
import yaml

from tests.deploy.tools import DASHBOARDS, DEPLOY, ROOT, require_tool, run_tool
from vpp.cli import app
from vpp.core.site import read_site
from vpp.recorder import Recorder

COMPOSE = DEPLOY / "compose.yaml"
ALERTMANAGER = DEPLOY / "alertmanager.yml"
UNIT = DEPLOY / "vpp.service"
#: ``${NAME:-default}``, ``${NAME-default}``, ``${NAME:?message}``, ``${NAME}``.
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?-)([^}]*)|(:?\?)[^}]*)?\}")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def with_defaults(text: str) -> str:
    """Compose's interpolation with an empty environment: defaults in, the rest empty."""
    return VARIABLE.sub(lambda m: m.group(3) or "", text)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host source (a path relative to the compose file, or a volume)."""
    found = {}
    for entry in service.get("volumes", []):
        source, target, *_ = with_defaults(entry).split(":")
        found[target] = source
    return found


def bind_source(source: str) -> Path | None:
    """The host path of a bind mount, or None for a named volume."""
    if not source.startswith((".", "/")):
        return None
    return (DEPLOY / source).resolve()


def flags(command: list[str]) -> dict[str, str]:
    """``--name=value`` arguments as a dict."""
    return dict(arg.removeprefix("--").split("=", 1) for arg in command if "=" in arg)


def parse_vpp(args: list[str]) -> dict[str, Any]:
    """Parse ``vpp`` arguments with the real command line (a bad option raises)."""
    group = typer.main.get_command(app)
    name, *rest = args
    command = group.get_command(group.make_context("vpp", [name]), name)  # type: ignore[attr-defined]
    assert command is not None, f"no vpp command {name!r}"
    params: dict[str, Any] = command.make_context(name, rest).params
    return params


# -- compose ----------------------------------------------------------------------------------


def test_compose_runs_the_four_services_on_the_host_network() -> None:
    services = compose()["services"]
    assert set(services) == {"vpp", "prometheus", "alertmanager", "grafana"}
    for name, service in services.items():
        # The files of dashboards/ address each other on 127.0.0.1.
        assert service["network_mode"] == "host", name
        assert service["restart"] == "unless-stopped", name
    assert services["prometheus"]["depends_on"] == ["alertmanager"]
    assert services["grafana"]["depends_on"] == ["prometheus"]


def test_every_mount_is_a_file_of_the_repository_or_a_declared_volume() -> None:
    data = compose()
    seen = 0
    for name, service in data["services"].items():
        for target, source in mounts(service).items():
            assert PurePosixPath(target).is_absolute(), f"{name}: {target}"
            path = bind_source(source)
            if path is None:
                assert source in data["volumes"], f"{name}: volume {source} not declared"
                continue
            assert path.exists(), f"{name}: {source} -> {path} does not exist"
            assert path.is_relative_to(ROOT), f"{name}: {source} is outside the repository"
            seen += 1
    assert seen == 7  # site file; prometheus.yml, alerts.yml; alertmanager.yml; 3 of Grafana


def test_prometheus_reads_the_scrape_config_and_rules_of_dashboards() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    mounted = mounts(prometheus)
    args = flags(prometheus["command"])
    config_path = PurePosixPath(args["config.file"])
    assert bind_source(mounted[str(config_path)]) == DASHBOARDS / "prometheus.yml"
    config = yaml.safe_load((DASHBOARDS / "prometheus.yml").read_text())
    for rule_file in config["rule_files"]:
        target = config_path.parent / rule_file
        assert bind_source(mounted[str(target)]) == DASHBOARDS / "alerts.yml"
    # The controller it scrapes is the one compose runs: the default site's HTTP port.
    site = read_site(bind_source(mounts(services["vpp"])["/etc/vpp/site.toml"]))  # type: ignore[arg-type]
    [job] = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"127.0.0.1:{site.run.http_port}"]
    assert site.run.http_host == "127.0.0.1"
    # Alerts go to the Alertmanager compose runs.
    [alertmanagers] = config["alerting"]["alertmanagers"]
    listen = flags(services["alertmanager"]["command"])["web.listen-address"]
    assert alertmanagers["static_configs"][0]["targets"] == [listen]
    assert args["web.listen-address"].startswith("127.0.0.1:")


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DASHBOARDS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_prometheus_config_as_mounted_passes_promtool(tmp_path: Path) -> None:
    """Lay the mounts out as the container sees them and check them there."""
    promtool = require_tool("promtool", "prometheus")
    prometheus = compose()["services"]["prometheus"]
    for target, source in mounts(prometheus).items():
        path = bind_source(source)
        if path is not None:
            where = tmp_path / target.lstrip("/")
            where.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, where)
    config = tmp_path / flags(prometheus["command"])["config.file"].lstrip("/")
    result = run_tool([promtool, "check", "config", str(config)])
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "SUCCESS" in output and f"{len(alert_rules())} rules found" in output


def test_grafana_is_provisioned_with_the_dashboards() -> None:
    services = compose()["services"]
    mounted = mounts(services["grafana"])
    provisioning = {
        target: bind_source(source)
        for target, source in mounted.items()
        if target.startswith("/etc/grafana/provisioning/")
    }
    assert provisioning == {
        "/etc/grafana/provisioning/datasources/vpp.yaml": DASHBOARDS
        / "provisioning/datasources.yaml",
        "/etc/grafana/provisioning/dashboards/vpp.yaml": DASHBOARDS
        / "provisioning/dashboards.yaml",
    }
    providers = yaml.safe_load((DASHBOARDS / "provisioning/dashboards.yaml").read_text())
    [provider] = providers["providers"]
    folder = bind_source(mounted[provider["options"]["path"]])
    assert folder == DASHBOARDS / "grafana"
    assert {p.name for p in folder.glob("*.json")} == {
        f"vpp-{name}.json"
        for name in ("overview", "devices", "heat", "optimizer", "signals", "city")
    }
    sources = yaml.safe_load((DASHBOARDS / "provisioning/datasources.yaml").read_text())
    [source] = sources["datasources"]
    listen = flags(services["prometheus"]["command"])["web.listen-address"]
    assert source["url"] == f"http://{listen}"
    env = services["grafana"]["environment"]
    assert env["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    # No default admin password: compose refuses to start without one.
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_the_controller_service_runs_vpp_with_its_db_on_a_volume() -> None:
    data = compose()
    service = data["services"]["vpp"]
    params = parse_vpp(service["command"])
    mounted = mounts(service)
    assert str(params["config"]) in mounted
    site_file = bind_source(mounted[str(params["config"])])
    assert site_file == ROOT / "config" / "demo.toml"
    db = PurePosixPath(params["db"])
    assert mounted[str(db.parent)] in data["volumes"]  # the recorder outlives the container
    assert service["stop_signal"] == "SIGTERM" and service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    # The image: its context and Dockerfile exist, and every COPY source is in the context.
    build = service["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT
    dockerfile = context / build["dockerfile"]
    text = dockerfile.read_text()
    copied = [
        part
        for line in text.splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
    ]
    assert copied and all((context / c).exists() for c in copied)
    allowed = {
        line[1:].rstrip("/")
        for line in dockerfile.with_name("Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert set(copied) <= allowed
    assert "USER vpp" in text and 'ENTRYPOINT ["vpp"]' in text


# -- Alertmanager -----------------------------------------------------------------------------


def test_alertmanager_config_passes_amtool() -> None:
    amtool = require_tool("amtool", "prometheus-alertmanager")
    result = run_tool([amtool, "check-config", str(ALERTMANAGER)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    mounted = mounts(compose()["services"]["alertmanager"])
    config_file = flags(compose()["services"]["alertmanager"]["command"])["config.file"]
    assert bind_source(mounted[config_file]) == ALERTMANAGER


def test_alertmanager_routes_every_rule_by_its_severity() -> None:
    """Critical alerts page the on-call receiver, warnings go to the operators' mail."""
    amtool = require_tool("amtool", "prometheus-alertmanager")
    rules = alert_rules()
    expected = {"critical": "on-call", "warning": "operators-mail"}
    assert len(rules) >= 17
    for rule in rules:
        severity = rule["labels"]["severity"]
        labels = [f"alertname={rule['alert']}", f"severity={severity}", "site=leipzig-demo"]
        result = run_tool(
            [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels]
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.split() == [expected[severity]], rule["alert"]


# -- systemd ----------------------------------------------------------------------------------


def unit() -> dict[str, dict[str, list[str]]]:
    """Section -> key -> values (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_runs_vpp_as_its_own_user_with_the_db_in_var_lib() -> None:
    service = unit()["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["User"] == one["Group"] == "vpp"
    assert one["Restart"] == "on-failure" and one["RestartSec"] == "5s"
    assert one["StateDirectory"] == "vpp" and one["WorkingDirectory"] == "/var/lib/vpp"
    binary, *args = shlex.split(one["ExecStart"])
    assert PurePosixPath(binary).name == "vpp"
    params = parse_vpp(args)
    assert PurePosixPath(params["db"]).parent == PurePosixPath("/var/lib/vpp")
    assert params["simulate"] is False  # real devices, whatever the site file says
    assert str(params["config"]).startswith("/etc/vpp/")
    assert one["EnvironmentFile"] == "-/etc/vpp/vpp.env"
    assert (DEPLOY / "vpp.env.example").is_file()
    assert unit()["Install"]["WantedBy"] == ["multi-user.target"]
    assert int(unit()["Unit"]["StartLimitBurst"][0]) > 1


def test_unit_is_hardened() -> None:
    service = {key: values[-1] for key, values in unit()["Service"].items()}
    hardening = {
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "SystemCallArchitectures": "native",
        "SystemCallFilter": "@system-service",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    }
    assert {key: service.get(key) for key in hardening} == hardening
    # numba's LLVM needs writable and executable memory: this option would kill the import.
    assert "MemoryDenyWriteExecute" not in service
    assert int(service["LimitNOFILE"]) >= 4096  # a connection per device


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """The unit with ExecStart pointed at this checkout's vpp: no unknown key, no bad value."""
    analyze = require_tool("systemd-analyze", "systemd")
    vpp = Path(sys.executable).with_name("vpp")
    assert vpp.is_file()
    text = UNIT.read_text().replace("/opt/vpp/.venv/bin/vpp", str(vpp))
    copy = tmp_path / "vpp.service"
    copy.write_text(text)
    result = run_tool([analyze, "verify", str(copy)], cwd=tmp_path)
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if "vpp.service" in line
    ]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr


def test_systemd_analyze_reports_a_bad_value(tmp_path: Path) -> None:
    """The check above would pass on a verifier that says nothing: make sure it speaks."""
    analyze = require_tool("systemd-analyze", "systemd")
    copy = tmp_path / "vpp.service"
    copy.write_text(UNIT.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    result = run_tool([analyze, "verify", str(copy)], cwd=tmp_path)
    assert "restart specifier" in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["compose.yaml", "alertmanager.yml"])
def test_yaml_files_parse(name: str) -> None:
    assert isinstance(yaml.safe_load((DEPLOY / name).read_text()), dict)


# -- the backup timer -------------------------------------------------------------------------


def unit_values(path: Path) -> dict[str, str]:
    """Key -> last value of every section of a unit file."""
    found = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def systemd_unescape(text: str) -> str:
    """What systemd passes on for ``$$`` and ``%%``."""
    return text.replace("$$", "$").replace("%%", "%")


def test_backup_units_verify(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    vpp = Path(sys.executable).with_name("vpp")
    for name in ("vpp-backup.service", "vpp-backup.timer"):
        text = (DEPLOY / name).read_text().replace("/opt/vpp/.venv/bin/vpp", str(vpp))
        (tmp_path / name).write_text(text)
    result = run_tool(
        [
            analyze,
            "verify",
            str(tmp_path / "vpp-backup.service"),
            str(tmp_path / "vpp-backup.timer"),
        ],
        cwd=tmp_path,
    )
    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if "vpp-backup" in line
    ]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr
    timer = unit_values(DEPLOY / "vpp-backup.timer")
    assert timer["Persistent"] == "true" and timer["OnCalendar"].startswith("*-*-*")


def test_backup_service_backs_up_the_controllers_database(tmp_path: Path) -> None:
    """The unit's command, run for real on a copy of its paths: a dated, checked copy."""
    service = unit_values(DEPLOY / "vpp-backup.service")
    assert service["User"] == "vpp" and service["Type"] == "oneshot"
    shell, flag, script = shlex.split(service["ExecStart"])
    assert (shell, flag) == ("/bin/sh", "-c")
    script = systemd_unescape(script)
    # The database it copies is the one the controller's unit writes.
    controller_db = str(parse_vpp(shlex.split(unit_values(UNIT)["ExecStart"])[1:])["db"])
    assert f"--db {controller_db} " in script
    db, backups = tmp_path / "vpp.sqlite", tmp_path / "backups"
    backups.mkdir()
    with Recorder(db) as rec:
        rec.record_event("info", "test", "k", "before the backup", time=datetime.now(UTC))
    script = (
        script.replace("/opt/vpp/.venv/bin/vpp", str(Path(sys.executable).with_name("vpp")))
        .replace(controller_db, str(db))
        .replace("/var/lib/vpp/backups", str(backups))
    )
    for _ in range(2):  # --force: a second run the same day replaces the copy
        result = run_tool([shell, flag, script])
        assert result.returncode == 0, result.stdout + result.stderr
    [copy] = backups.iterdir()
    assert re.fullmatch(r"vpp-\d{4}-\d{2}-\d{2}\.sqlite", copy.name)
    today = datetime.now(UTC).date()
    assert date.fromisoformat(copy.name[4:14]) in {today, today - timedelta(days=1)}  # UTC day
    with Recorder(copy) as rec:
        assert list(rec.events()["message"]) == ["before the backup"]
    cleanup = service["ExecStartPost"].split()
    assert cleanup[:2] == ["/usr/bin/find", "/var/lib/vpp/backups"] and "-delete" in cleanup
