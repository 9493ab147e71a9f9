"""The coordinator's history in PostgreSQL (asyncpg): every message the agents sent, their
telemetry as rows, the targets sent and what became of them, the city plans.

Messages are keyed by (agent, seq): one sent twice (after a reconnect) is stored once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS agent_messages (
    agent text NOT NULL, seq bigint NOT NULL, stream text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(), payload jsonb NOT NULL,
    PRIMARY KEY (agent, seq));
CREATE TABLE IF NOT EXISTS telemetry (
    agent text NOT NULL, seq bigint NOT NULL, time timestamptz NOT NULL, grid_w double precision,
    pv_w double precision NOT NULL, battery_w double precision NOT NULL,
    battery_soc_wh double precision NOT NULL, plan_source text NOT NULL, target_seq bigint,
    PRIMARY KEY (agent, seq));
CREATE TABLE IF NOT EXISTS targets (
    agent text NOT NULL, seq bigint NOT NULL, planned_at timestamptz NOT NULL,
    start timestamptz NOT NULL, expires_at timestamptz NOT NULL, payload jsonb NOT NULL,
    ack_status text, ack_reason text, acked_at timestamptz,
    PRIMARY KEY (agent, seq));
CREATE TABLE IF NOT EXISTS city_plans (
    planned_at timestamptz PRIMARY KEY, start timestamptz NOT NULL, status text NOT NULL,
    agents int NOT NULL, solve_s double precision NOT NULL,
    max_import_w double precision NOT NULL, max_export_w double precision NOT NULL);
CREATE TABLE IF NOT EXISTS city_signals (
    id text PRIMARY KEY, kind text NOT NULL, body jsonb NOT NULL,
    added_at timestamptz NOT NULL, added_by text NOT NULL,
    cancelled_at timestamptz, cancelled_by text);
CREATE TABLE IF NOT EXISTS coordinator_meta (key text PRIMARY KEY, value bigint NOT NULL);
"""


class History:
    """A pool on the coordinator's database; ``await History.open(dsn)``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, dsn: str) -> History:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        async with pool.acquire() as con:
            await con.execute(SCHEMA_SQL)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def store_messages(self, rows: list[tuple[str, int, str, dict[str, Any]]]) -> None:
        """(agent, seq, stream, payload) rows; ones already stored are skipped."""
        if not rows:
            return
        tele = [
            (a, q, datetime.fromisoformat(p["time"]), p["grid_w"], p["pv_w"], p["battery_w"],
             p["battery_soc_wh"], p["plan_source"], p["target_seq"])
            for a, q, st, p in rows if st == "up/telemetry"
        ]  # fmt: skip
        async with self.pool.acquire() as con, con.transaction():
            await con.executemany(
                "INSERT INTO agent_messages (agent, seq, stream, payload) VALUES ($1,$2,$3,$4) "
                "ON CONFLICT DO NOTHING",
                [(a, q, st, json.dumps(p)) for a, q, st, p in rows],
            )
            if tele:
                await con.executemany(
                    "INSERT INTO telemetry VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
                    "ON CONFLICT DO NOTHING",
                    tele,
                )

    async def stored_upto(self) -> dict[str, int]:
        """Per agent: the highest seq up to which every message is stored."""
        rows = await self.pool.fetch(
            "SELECT agent, min(seq) AS upto FROM ("
            "  SELECT agent, seq, lead(seq) OVER (PARTITION BY agent ORDER BY seq) AS nxt"
            "  FROM agent_messages) x WHERE nxt IS NULL OR nxt <> seq + 1 GROUP BY agent"
        )
        return {r["agent"]: int(r["upto"]) for r in rows}

    async def store_target(
        self, agent: str, seq: int, planned_at: datetime, start: datetime,
        expires_at: datetime, payload: str,
    ) -> None:  # fmt: skip
        await self.pool.execute(
            "INSERT INTO targets (agent, seq, planned_at, start, expires_at, payload) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
            agent, seq, planned_at, start, expires_at, payload,
        )  # fmt: skip

    async def store_ack(self, agent: str, seq: int, status: str, reason: str, at: datetime) -> None:
        # "applied" is what matters: a later "duplicate" or "refused" (the same target heard
        # again after a reconnect, or a stale retained copy) does not overwrite it, and it
        # overwrites any other answer, whichever arrives first.
        await self.pool.execute(
            "UPDATE targets SET ack_status = $3, ack_reason = $4, acked_at = $5 "
            "WHERE agent = $1 AND seq = $2 AND (ack_status IS NULL OR "
            "($3 = 'applied' AND ack_status <> 'applied'))",
            agent, seq, status, reason, at,
        )  # fmt: skip

    async def store_plan(
        self, planned_at: datetime, start: datetime, status: str, agents: int, solve_s: float,
        max_import_w: float, max_export_w: float,
    ) -> None:  # fmt: skip
        await self.pool.execute(
            "INSERT INTO city_plans VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING",
            planned_at, start, status, agents, solve_s, max_import_w, max_export_w,
        )  # fmt: skip

    async def last_target_seqs(self) -> dict[str, int]:
        rows = await self.pool.fetch("SELECT agent, max(seq) AS seq FROM targets GROUP BY agent")
        return {r["agent"]: int(r["seq"]) for r in rows}

    async def add_city_signal(
        self, ident: str, kind: str, body: dict[str, Any], at: datetime, by: str
    ) -> bool:
        """A signal or cap set through the operator API (``kind`` signal or cap); False when
        the id is taken (also by one cancelled: ids are never reused)."""
        done = await self.pool.execute(
            "INSERT INTO city_signals (id, kind, body, added_at, added_by) "
            "VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING",
            ident, kind, json.dumps(body), at, by,
        )  # fmt: skip
        return bool(done.endswith(" 1"))

    async def cancel_city_signal(self, ident: str, at: datetime, by: str) -> bool:
        done = await self.pool.execute(
            "UPDATE city_signals SET cancelled_at = $2, cancelled_by = $3 "
            "WHERE id = $1 AND cancelled_at IS NULL",
            ident, at, by,
        )  # fmt: skip
        return bool(done.endswith(" 1"))

    async def city_signals(self) -> tuple[list[tuple[str, dict[str, Any]]], set[str]]:
        """(kind, body) of every signal and cap not cancelled, oldest first; every id used."""
        rows = await self.pool.fetch(
            "SELECT id, kind, body, cancelled_at FROM city_signals ORDER BY added_at, id"
        )
        live = [(r["kind"], json.loads(r["body"])) for r in rows if r["cancelled_at"] is None]
        return live, {r["id"] for r in rows}

    async def set_meta(self, key: str, value: int) -> None:
        await self.pool.execute(
            "INSERT INTO coordinator_meta VALUES ($1,$2) "
            "ON CONFLICT (key) DO UPDATE SET value = greatest(coordinator_meta.value, $2)",
            key, value,
        )  # fmt: skip

    async def meta(self, key: str) -> int:
        value = await self.pool.fetchval("SELECT value FROM coordinator_meta WHERE key = $1", key)
        return 0 if value is None else int(value)

    async def count(self, table: str) -> int:
        if table not in ("agent_messages", "telemetry", "targets", "city_plans", "city_signals"):
            raise ValueError(f"no table {table!r}")
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {table}"))
