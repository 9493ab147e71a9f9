"""The agent's local buffer (SQLite): every message up, numbered, until the coordinator says
it has stored it; and what the agent must remember across restarts (the last target applied).

A message stays in the outbox after the broker took it: the broker may crash before the
coordinator reads it. Only the coordinator's ``down/sync`` (the highest sequence number up to
which it holds every message of this agent) deletes rows, so a broker or coordinator that was
gone gets everything again, in order, after the reconnect; the coordinator drops what it
already has by (agent, seq).

A bound (``max_bytes`` of payload) keeps a district cut off for weeks from filling its disk:
past it the oldest droppable messages (per-device summaries first, then flexibility a newer
one replaced) give way to a small tombstone under the same number (built by ``tombstone``),
so the numbering keeps no gaps and the coordinator learns what was dropped. Aggregates
(telemetry) and target acknowledgements are never dropped. Drops are counted per stream,
across restarts.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("vpp.city.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, stream TEXT NOT NULL,
                                   payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
#: Streams dropped from a full outbox, in this order, oldest first.
DROPPABLE = ("up/devices", "up/flex")
#: Stream of the tombstone that takes a dropped message's number.
DROPPED = "up/dropped"
#: ``tombstone(seq, stream, size_bytes)``: the payload that replaces a dropped message.
Tombstone = Callable[[int, str, int], bytes]


def _placeholder(seq: int, stream: str, size: int) -> bytes:
    del seq, size
    return stream.encode()


class Outbox:
    """Numbered messages up, kept until confirmed. Safe to use from several threads.

    ``max_bytes``: the most payload bytes kept (None: no bound)."""

    def __init__(self, path: Path | str, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"outbox max_bytes: must be > 0, got {max_bytes}")
        self.path = str(path)
        self.max_bytes = max_bytes
        #: Set by the agent: builds the tombstone payload (schema ``Dropped``).
        self.tombstone: Tombstone = _placeholder
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        last = self._db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        self._next = max(int(last or 0), self.meta("confirmed_seq")) + 1
        self._bytes = int(self._db.execute("SELECT total(length(payload)) FROM outbox")
                          .fetchone()[0])  # fmt: skip
        self._warned_full = False

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def meta(self, key: str, default: int = 0) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def set_meta(self, key: str, value: int) -> None:
        with self._lock:
            self._set_meta(key, value)

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
            (key, value, value),
        )

    def put(self, stream: str, make: Callable[[int], bytes]) -> int:
        """Store the message ``make(seq)`` under the next sequence number; returns it.
        Past the bound, older droppable messages give way (never this one)."""
        with self._lock:
            seq = self._next
            payload = make(seq)
            self._db.execute("INSERT INTO outbox VALUES (?, ?, ?)", (seq, stream, payload))
            self._next = seq + 1
            self._bytes += len(payload)
            if self.max_bytes is not None and self._bytes > self.max_bytes:
                self._make_room(seq)
            return seq

    def _make_room(self, newest: int) -> None:
        """Tombstones for the oldest droppable messages until the payload is within the
        bound (the newest message and the newest flexibility stay)."""
        assert self.max_bytes is not None
        keep_flex = self._db.execute(
            "SELECT max(seq) FROM outbox WHERE stream = 'up/flex'"
        ).fetchone()[0]
        for stream in DROPPABLE:
            while self._bytes > self.max_bytes:
                rows = self._db.execute(
                    "SELECT seq, length(payload) FROM outbox WHERE stream = ? AND seq < ? "
                    "AND seq IS NOT ? ORDER BY seq LIMIT 64",
                    (stream, newest, keep_flex),
                ).fetchall()
                if not rows:
                    break
                for seq, size in rows:
                    stone = self.tombstone(int(seq), stream, int(size))
                    self._db.execute(
                        "UPDATE outbox SET stream = ?, payload = ? WHERE seq = ?",
                        (DROPPED, stone, seq),
                    )
                    self._bytes += len(stone) - int(size)
                    key = f"dropped:{stream}"
                    self._set_meta(key, self.meta(key) + 1)
                    if self._bytes <= self.max_bytes:
                        break
        if self._bytes > self.max_bytes and not self._warned_full:
            self._warned_full = True
            log.warning(
                "outbox over its bound (%d > %d bytes) with nothing left to drop: "
                "telemetry and acknowledgements are kept",
                self._bytes,
                self.max_bytes,
            )

    def dropped(self) -> dict[str, int]:
        """Messages dropped so far, per stream."""
        return {st: self.meta(f"dropped:{st}") for st in DROPPABLE}

    def size_bytes(self) -> int:
        """Payload bytes held."""
        return self._bytes

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
            gone = self._db.execute(
                "SELECT total(length(payload)) FROM outbox WHERE seq <= ?", (upto,)
            ).fetchone()[0]
            self._db.execute("DELETE FROM outbox WHERE seq <= ?", (upto,))
            self._bytes -= int(gone)
            self._warned_full = False
            self._set_meta("confirmed_seq", upto)

    @property
    def confirmed(self) -> int:
        return self.meta("confirmed_seq")

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])
