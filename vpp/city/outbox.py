"""The agent's local buffer (SQLite): every message up, numbered, until the coordinator says
it has stored it; and what the agent must remember across restarts (the last target applied).

A message stays in the outbox after the broker took it: the broker may crash before the
coordinator reads it. Only the coordinator's ``down/sync`` (the highest sequence number up to
which it holds every message of this agent) deletes rows, so a broker or coordinator that was
gone gets everything again, in order, after the reconnect; the coordinator drops what it
already has by (agent, seq).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL,
                                   payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Outbox:
    """Numbered messages up, kept until confirmed. Safe to use from several threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        last = self._db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        self._next = max(int(last or 0), self.meta("confirmed_seq")) + 1

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def meta(self, key: str, default: int = 0) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def set_meta(self, key: str, value: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    def put(self, stream: str, make: Callable[[int], bytes]) -> int:
        """Store the message ``make(seq)`` under the next sequence number; returns it."""
        with self._lock:
            seq = self._next
            self._db.execute("INSERT INTO outbox VALUES (?, ?, ?)", (seq, stream, make(seq)))
            self._next = seq + 1
            return seq

    def after(self, seq: int, limit: int = 500) -> list[tuple[int, str, bytes]]:
        """Messages numbered above ``seq``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, stream, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [(int(s), str(t), bytes(p)) for s, t, p in rows]

    def confirm(self, upto: int) -> None:
        """The coordinator holds every message up to ``upto``: forget them."""
        with self._lock:
            if upto <= self.meta("confirmed_seq"):
                return
            self._db.execute("DELETE FROM outbox WHERE seq <= ?", (upto,))
            self._db.execute(
                "INSERT INTO meta VALUES ('confirmed_seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (upto,),
            )

    @property
    def confirmed(self) -> int:
        return self.meta("confirmed_seq")

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])
