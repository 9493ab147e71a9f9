"""Mosquitto for the city link: a configuration with one user per agent and ACLs, and a
started broker process (for ``make run-city``, the tests and the benchmark).

Each agent's broker user name is its agent id. The ACL lets an agent write only below
``vpp/v1/<id>/up/`` and read only ``vpp/v1/<id>/down/``; the coordinator reads every
agent's ``up`` and writes every agent's ``down``. Anonymous clients are refused. The broker
listens on loopback unless told otherwise; for TLS see docs/city.md.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vpp.city.schema import ROOT

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
COORDINATOR_USER = "coordinator"


def acl_text(agents: Iterable[str]) -> str:
    """The ACL file: the coordinator everything of the city, each agent its own topics."""
    lines = [
        f"user {COORDINATOR_USER}",
        f"topic read {ROOT}/+/up/#",
        f"topic write {ROOT}/+/down/#",
        "",
        "# every other user is an agent, named by its id",
        f"pattern write {ROOT}/%u/up/#",
        f"pattern read {ROOT}/%u/down/#",
    ]
    del agents  # one pattern serves every agent; the password file names them
    return "\n".join(lines) + "\n"


@dataclass
class TlsFiles:
    """Certificate files of a TLS listener (see docs/city.md for making them)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    #: Clients must show a certificate the CA signed (on top of their password).
    require_certificate: bool = False


@dataclass
class BrokerConfig:
    """A broker's files in ``folder``: mosquitto.conf, passwd, acl, persistence, log."""

    folder: Path
    port: int
    agents: list[str]
    host: str = "127.0.0.1"
    tls: TlsFiles | None = None
    passwords: dict[str, str] = field(default_factory=dict)

    def write(self) -> Path:
        """Write every file (new random passwords for users that have none); the config."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for user in [COORDINATOR_USER, *self.agents]:
            self.passwords.setdefault(user, secrets.token_urlsafe(18))
        passwd = self.folder / "passwd"
        passwd.write_text("".join(f"{u}:{p}\n" for u, p in self.passwords.items()))
        passwd.chmod(0o600)
        # mosquitto_passwd -U hashes a plain "user:password" file in place.
        subprocess.run([MOSQUITTO_PASSWD, "-U", str(passwd)], check=True, capture_output=True)
        (self.folder / "acl").write_text(acl_text(self.agents))
        data = self.folder / "data"
        data.mkdir(exist_ok=True)
        conf = [
            # Started as root, mosquitto becomes the "mosquitto" user, which cannot read a
            # private temp folder: it stays the user that started it.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            "per_listener_settings false",
            "allow_anonymous false",
            f"password_file {passwd}",
            f"acl_file {self.folder / 'acl'}",
            "persistence true",
            f"persistence_location {data}/",
            "autosave_interval 1",
            "max_queued_messages 200000",
            "max_inflight_messages 100",
            "max_packet_size 16000000",
            f"log_dest file {self.folder / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"listener {self.port} {self.host}",
        ]
        if self.tls is not None:
            conf += [
                f"cafile {self.tls.cafile}",
                f"certfile {self.tls.certfile}",
                f"keyfile {self.tls.keyfile}",
                "tls_version tlsv1.2",
            ]
            if self.tls.require_certificate:
                conf.append("require_certificate true")
        path = self.folder / "mosquitto.conf"
        path.write_text("\n".join(conf) + "\n")
        return path


class Broker:
    """A Mosquitto process for ``config``; ``start`` waits until it accepts connections."""

    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self._conf: Path | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        if self._conf is None:
            self._conf = self.config.write()
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self._conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                log = self.config.folder / "mosquitto.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}{tail}")
            try:
                with socket.create_connection((self.config.host, self.config.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"mosquitto did not listen on port {self.config.port} in {timeout_s} s")

    def kill(self) -> None:
        """SIGKILL, as a crash: only what persistence saved survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def __enter__(self) -> Broker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
