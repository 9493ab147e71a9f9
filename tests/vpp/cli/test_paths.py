"""Files and folders the commands write are checked before any work starts: one line
naming the path, never a traceback later (``vpp run --db``, ``vpp plan --out``,
``vpp replay --out``, the site's ``run.inputs_file``)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tests.conftest import free_port
from vpp.cli import app
from vpp.cli.paths import database_problem

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "config" / "demo.toml"


@pytest.fixture
def chmod() -> Iterator[Callable[[Path, int], Path]]:
    """chmod that is undone after the test, so that the temporary folder can be removed."""
    changed: list[tuple[Path, int]] = []

    def change(path: Path, mode: int) -> Path:
        changed.append((path, path.stat().st_mode))
        path.chmod(mode)
        return path

    yield change
    for path, mode in reversed(changed):
        path.chmod(mode)


def _sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    return path


def _run(*args: str) -> Result:
    # --no-simulate and a free port: should a check let a bad path through, nothing
    # listens on the demo's ports
    base = ["run", "--no-simulate", "--http-port", str(free_port())]
    return CliRunner().invoke(app, [*base, *args])


def _stopped(result: Result, line: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert result.stderr == line + "\n"


def test_run_refuses_a_db_it_cannot_write(
    tmp_path: Path, chmod: Callable[[Path, int], Path]
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    read_only = chmod(_sqlite(tmp_path / "ro.sqlite"), 0o444)
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    locked = tmp_path / "locked"
    locked.mkdir()
    beside_journal = _sqlite(locked / "old.sqlite")
    chmod(locked, 0o555)
    locked_text = f"folder {locked} is read-only (mode 0555)"
    cases = [
        (folder, "is a folder, not a database file"),
        (read_only, "is read-only (mode 0444)"),
        (text, "is not an SQLite database"),
        (text / "vpp.sqlite", f"{text} is not a folder"),
        (locked / "new" / "vpp.sqlite", f"cannot create it: {locked_text}"),
        (beside_journal, f"{locked_text} (SQLite writes its journal beside the database)"),
    ]
    for db, reason in cases:
        _stopped(_run("--config", str(DEMO), "--db", str(db)), f"--db {db}: {reason}")


def test_run_names_the_site_files_db_path(tmp_path: Path) -> None:
    folder = tmp_path / "var"
    folder.mkdir()
    config = tmp_path / "site.toml"
    config.write_text(
        DEMO.read_text().replace('db_path = "var/vpp-demo.sqlite"', f'db_path = "{folder}"')
    )
    _stopped(
        _run("--config", str(config)),
        f"{config}: run.db_path {folder}: is a folder, not a database file",
    )


def test_run_names_a_backup_dir_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "site.toml"
    text = DEMO.read_text().replace(
        'db_path = "var/vpp-demo.sqlite"',
        f'db_path = "{tmp_path / "v.sqlite"}"\nbackup_dir = "{blocker / "backups"}"',
    )
    assert "backup_dir" in text
    config.write_text(text)
    why = f"cannot create it: {blocker} is not a folder"
    _stopped(
        _run("--config", str(config)), f"{config}: run.backup_dir {blocker / 'backups'}: {why}"
    )


def test_database_check_passes_new_and_existing_databases(tmp_path: Path) -> None:
    new = tmp_path / "var" / "deeper" / "vpp.sqlite"
    assert database_problem(new) is None
    assert not (tmp_path / "var").exists()  # the check creates nothing
    assert database_problem(_sqlite(tmp_path / "vpp.sqlite")) is None
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    assert database_problem(empty) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite", "vpp.sqlite"]


def test_run_names_a_missing_inputs_file(tmp_path: Path) -> None:
    missing = tmp_path / "inputs.parquet"
    config = tmp_path / "site.toml"
    config.write_text(
        DEMO.read_text().replace(
            'db_path = "var/vpp-demo.sqlite"',
            f'db_path = "{tmp_path / "vpp.sqlite"}"\ninputs_file = "{missing}"',
        )
    )
    args = ["run", "--config", str(config), "--no-simulate", "--http-port", str(free_port())]
    res = subprocess.run(
        [sys.executable, "-m", "vpp", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert res.returncode == 1, res.stderr
    assert res.stderr == f"{config}: input sources: {missing}: not found\n"


def test_plan_checks_out_before_planning(tmp_path: Path) -> None:
    args = ["plan", "--config", str(DEMO), "--at", "2018-01-03T06:00Z"]
    for out, reason in (
        (tmp_path, "is a folder, not a file"),
        (tmp_path / "no" / "plan.csv", f"folder {tmp_path / 'no'} does not exist"),
    ):
        result = CliRunner().invoke(app, [*args, "--out", str(out)])
        _stopped(result, f"plan: --out {out}: {reason}")


def test_replay_checks_out_before_replaying(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    out.write_text("")
    args = ["replay", "--config", str(DEMO), "--from", "2018-05-16", "--to", "2018-05-16"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    _stopped(result, f"replay: --out {out}: {out} is not a folder")


def test_run_refuses_a_start_that_is_no_time(tmp_path: Path) -> None:
    result = _run("--config", str(DEMO), "--db", str(tmp_path / "vpp.sqlite"), "--start", "soon")
    assert result.exit_code == 2, result.output  # a usage error, not a ValueError traceback
    words = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # rich's error box
    assert "Invalid value for --start: 'soon' is not an ISO time like" in words
