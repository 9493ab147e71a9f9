"""A throwaway PostgreSQL cluster (Debian's postgresql 15): initdb into a folder, started with
pg_ctl on a loopback port and a unix socket in that folder, stopped and left to delete.

For ``make run-city``, the tests and the benchmark; a real deployment points the coordinator
at its own database (``--db postgresql://...``). PostgreSQL refuses to run as root: as root
the cluster runs as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def _bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not versions:
        raise FileNotFoundError("PostgreSQL not found (Debian package postgresql)")
    return Path(versions[-1]).parent


class PgCluster:
    def __init__(self, port: int, folder: Path | None = None) -> None:
        """``folder``: where the cluster lives (default: a new temporary folder, deleted on
        stop). As root it must be reachable by the postgres user, so a new one is used."""
        self.port = port
        self._as: list[str] = []
        self._owned = folder is None or os.geteuid() == 0
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
        self.folder = Path(tempfile.mkdtemp(prefix="vpp-pg-")) if self._owned else Path(folder)  # type: ignore[arg-type]
        self.data = self.folder / "pgdata"
        self.bin = _bindir()
        self.started = False

    @property
    def dsn(self) -> str:
        return f"postgresql://vpp@127.0.0.1:{self.port}/vpp"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as, *args], capture_output=True, timeout=120, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip()}")

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._as:
            pw = pwd.getpwnam("postgres")
            os.chown(self.folder, pw.pw_uid, pw.pw_gid)
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "vpp",
                      "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.folder} -c fsync=off -c max_connections=40"
        )
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts,
                  "-l", str(self.folder / "pg.log"), "-w", "-t", "60", "start")  # fmt: skip
        self.started = True
        try:
            self._run(str(self.bin / "createdb"), "-h", str(self.folder), "-p", str(self.port),
                      "-U", "vpp", "vpp")  # fmt: skip
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop")  # fmt: skip
            self.started = False
        if self._owned:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PgCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
