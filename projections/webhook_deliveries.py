"""The outbox's tables, and the SQL over them: claiming and finishing deliveries (the
dispatcher's queue) and reading them (the deliveries API).

- `webhook_subscriptions`: each endpoint as the outbox knows it at its position in the log (the
  outbox alone writes it, in the transaction of the event that changed it).
- `webhook_deliveries`: one row per (endpoint, event), made by the outbox with the message body
  as it will be sent, every time; status `pending` -> `succeeded` | `failed` | `cancelled`.
  A pending row is due when `next_attempt_at` has come; claiming a row moves `next_attempt_at`
  to the end of the lease and names the lease holder in `leased_by`, so a dispatcher that dies
  leaves it due again when the lease ends.
- `webhook_attempts`: every attempt, numbered from 1 per delivery.

These are not read models: they are history (what was sent, and when), so `workledger replay`
never empties them. Instants are stored as epoch seconds, to compare and add.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from application.ports import SqlCursor, SqlDatabase
from application.queries import Page
from application.webhook_delivery import (
    CANCELLED,
    PENDING,
    SUCCEEDED,
    ClaimedDelivery,
    Decision,
    Finished,
    Outcome,
    message_id,
)
from projections.formats import from_json, instant

DDL = (
    "CREATE TABLE IF NOT EXISTS webhook_subscriptions ("
    " endpoint_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, url TEXT NOT NULL,"
    " events TEXT NOT NULL, status TEXT NOT NULL, secret_id TEXT NOT NULL,"
    " previous_secret_id TEXT, previous_valid_until DOUBLE PRECISION,"
    " enabled_since DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS webhook_subscriptions_tenant"
    " ON webhook_subscriptions (tenant_id, status)",
    "CREATE TABLE IF NOT EXISTS webhook_deliveries ("
    " delivery_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, endpoint_id TEXT NOT NULL,"
    " position BIGINT NOT NULL, event_type TEXT NOT NULL, event_id TEXT NOT NULL,"
    " body TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,"
    " attempts INTEGER NOT NULL, retry_base INTEGER NOT NULL,"
    " next_attempt_at DOUBLE PRECISION, leased_by TEXT, last_attempt_at DOUBLE PRECISION,"
    " response_status INTEGER, duration_ms INTEGER, error TEXT,"
    " created_at DOUBLE PRECISION NOT NULL, succeeded_at DOUBLE PRECISION)",
    # Partial: the due scan reads pending rows only, however many have been delivered.
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due"
    " ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_endpoint"
    " ON webhook_deliveries (endpoint_id, position)",
    "CREATE TABLE IF NOT EXISTS webhook_attempts ("
    " delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL,"
    " attempted_at DOUBLE PRECISION NOT NULL, response_status INTEGER,"
    " duration_ms INTEGER NOT NULL, response_body TEXT, error TEXT,"
    " PRIMARY KEY (delivery_id, attempt))",
)


def epoch(value: datetime) -> float:
    return value.timestamp()


def moment(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _instant(value: float | None) -> str | None:
    return None if value is None else instant(datetime.fromtimestamp(value, UTC))


def cancel_pending(cur: SqlCursor, endpoint_id: UUID, reason: str) -> None:
    """Stop every delivery to the endpoint that has not been sent (a send in flight still
    records its attempt, but no longer decides what happens next)."""
    cur.execute(
        "UPDATE webhook_deliveries SET status = ?, reason = ?, next_attempt_at = NULL,"
        " leased_by = NULL WHERE endpoint_id = ? AND status = 'pending'",
        (CANCELLED, reason, str(endpoint_id)),
    )


_DECIDED = (
    "UPDATE webhook_deliveries SET attempts = ?, status = ?, reason = ?, next_attempt_at = ?,"
    " leased_by = NULL, last_attempt_at = ?, response_status = ?, duration_ms = ?, error = ?,"
    " succeeded_at = COALESCE(?, succeeded_at) WHERE delivery_id = ?"
)
_RECORDED = (
    "UPDATE webhook_deliveries SET attempts = ?, last_attempt_at = ?, response_status = ?,"
    " duration_ms = ?, error = ? WHERE delivery_id = ?"
)

_LIST_COLUMNS = (
    "delivery_id, endpoint_id, event_type, event_id, status, reason, attempts,"
    " response_status, duration_ms, error, last_attempt_at, next_attempt_at, created_at, position"
)


def _doc(row: tuple[Any, ...]) -> dict[str, Any]:
    (
        delivery_id,
        endpoint_id,
        event_type,
        event_id,
        status,
        reason,
        attempts,
        response_status,
        duration_ms,
        error,
        last_attempt_at,
        next_attempt_at,
        created_at,
        _position,
    ) = row
    return {
        "deliveryId": delivery_id,
        "webhookId": endpoint_id,
        "messageId": message_id(UUID(delivery_id)),
        "eventType": event_type,
        "eventId": event_id,
        "status": status,
        "statusReason": reason,
        "attempts": attempts,
        "responseStatus": response_status,
        "durationMs": duration_ms,
        "error": error,
        "lastAttemptAt": _instant(last_attempt_at),
        "nextAttemptAt": _instant(next_attempt_at) if status == PENDING else None,
        "createdAt": _instant(created_at),
    }


class SqlDeliveries:
    """Implements application.webhook_delivery.DeliveryQueue and
    application.webhook_deliveries.DeliveryReadModel."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db
        # PostgreSQL: concurrent claimers skip each other's rows instead of queueing on them.
        # SQLite: the claim's write transaction holds the database's only write lock.
        self._skip_locked = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""

    # -- the dispatcher's queue -------------------------------------------------------------

    def claim(
        self, now: datetime, lease_until: datetime, limit: int, lease: str
    ) -> list[ClaimedDelivery]:
        with self._db.transaction() as cur:
            cur.execute(
                "SELECT delivery_id FROM webhook_deliveries"
                " WHERE status = 'pending' AND next_attempt_at <= ?"
                f" ORDER BY next_attempt_at LIMIT ?{self._skip_locked}",
                (epoch(now), limit),
            )
            ids = [row[0] for row in cur.fetchall()]
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            cur.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = ?, leased_by = ?"
                f" WHERE delivery_id IN ({marks})",
                (epoch(lease_until), lease, *ids),
            )
            cur.execute(
                "SELECT d.delivery_id, d.tenant_id, d.endpoint_id, d.body, s.url, s.secret_id,"
                " s.previous_secret_id, s.previous_valid_until"
                " FROM webhook_deliveries d JOIN webhook_subscriptions s"
                f" ON s.endpoint_id = d.endpoint_id WHERE d.delivery_id IN ({marks})"
                " ORDER BY d.next_attempt_at, d.position",
                ids,
            )
            rows = cur.fetchall()
        return [
            ClaimedDelivery(
                lease=lease,
                delivery_id=UUID(row[0]),
                tenant_id=UUID(row[1]),
                endpoint_id=UUID(row[2]),
                body=row[3].encode(),
                url=row[4],
                secret_id=UUID(row[5]),
                previous_secret_id=UUID(row[6]) if row[6] else None,
                previous_valid_until=moment(row[7]),
            )
            for row in rows
        ]

    def finish(self, outcomes: Sequence[Outcome]) -> list[Finished]:
        """One transaction, a statement of each kind for the whole batch (round trips, not
        rows, are what it costs on PostgreSQL)."""
        if not outcomes:
            return []
        ids = sorted({str(o.delivery_id) for o in outcomes})  # one lock order for everyone
        marks = ", ".join("?" for _ in ids)
        attempts: list[tuple[Any, ...]] = []
        updates: list[tuple[str, tuple[Any, ...]]] = []
        finished: list[Finished] = []
        with self._db.transaction() as cur:
            cur.execute(
                "SELECT delivery_id, attempts, retry_base, leased_by, status, endpoint_id"
                f" FROM webhook_deliveries WHERE delivery_id IN ({marks})"
                f" ORDER BY delivery_id{self._db.for_update}",
                ids,
            )
            rows = {row[0]: list(row[1:]) for row in cur.fetchall()}
            for outcome in outcomes:
                key, attempt = str(outcome.delivery_id), outcome.attempt
                if key not in rows:
                    raise LookupError(f"no webhook delivery {key}")
                row = rows[key]
                number, retry_base, leased_by, status, endpoint_id = row[0] + 1, *row[1:]
                row[0] = number  # a second outcome for it in this batch comes after this one
                at = epoch(attempt.at)
                attempts.append(
                    (
                        key,
                        number,
                        at,
                        attempt.response_status,
                        attempt.duration_ms,
                        attempt.response_body,
                        attempt.error,
                    )
                )
                last = (at, attempt.response_status, attempt.duration_ms, attempt.error)
                decision: Decision | None = None
                if leased_by == outcome.lease and status == PENDING:
                    decision = outcome.decide(number - retry_base)
                    row[2], row[3] = None, decision.status  # decided: no longer leased
                    due = decision.next_attempt_at
                    updates.append(
                        (
                            _DECIDED,
                            (
                                number,
                                decision.status,
                                decision.reason,
                                None if due is None else epoch(due),
                                *last,
                                at if decision.status == SUCCEEDED else None,
                                key,
                            ),
                        )
                    )
                else:  # no longer ours to decide: keep the attempt, and that it was the latest
                    updates.append((_RECORDED, (number, *last, key)))
                finished.append(
                    Finished(
                        delivery_id=outcome.delivery_id,
                        endpoint_id=UUID(endpoint_id),
                        attempt=number,
                        decision=decision,
                    )
                )
            cur.executemany(
                "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at,"
                " response_status, duration_ms, response_body, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                attempts,
            )
            if len(ids) == len(outcomes):  # one outcome per delivery: any order will do
                for sql in (_DECIDED, _RECORDED):
                    cur.executemany(sql, [params for kind, params in updates if kind == sql])
            else:  # a delivery twice (redelivered mid-send): its updates in order
                for sql, params in updates:
                    cur.execute(sql, params)
        return finished

    def failing_since(self, endpoint_id: UUID) -> datetime | None:
        """The endpoint's first failed attempt after its last success and its last enabling:
        a quiet spell is not a failure, so an endpoint with no traffic for a week whose next
        message fails is failing since that message, not for a week."""
        succeeded = self._db.query(
            "SELECT MAX(succeeded_at) FROM webhook_deliveries WHERE endpoint_id = ?",
            (str(endpoint_id),),
        )
        enabled = self._db.query(
            "SELECT enabled_since FROM webhook_subscriptions WHERE endpoint_id = ?",
            (str(endpoint_id),),
        )
        times = [t for t in (succeeded[0][0], enabled[0][0] if enabled else None) if t is not None]
        failed = self._db.query(
            "SELECT MIN(a.attempted_at) FROM webhook_attempts a JOIN webhook_deliveries d"
            " ON d.delivery_id = a.delivery_id WHERE d.endpoint_id = ? AND a.attempted_at > ?"
            " AND (a.response_status IS NULL OR a.response_status NOT BETWEEN 200 AND 299)",
            (str(endpoint_id), max(times, default=0.0)),
        )
        return moment(failed[0][0])

    # -- the deliveries API -----------------------------------------------------------------

    def list(
        self, tenant_id: UUID, endpoint_id: UUID, status: str | None, *, limit: int, after: int
    ) -> Page:
        conditions, params = (
            ["tenant_id = ?", "endpoint_id = ?"],
            [str(tenant_id), str(endpoint_id)],
        )
        if status is not None:
            conditions.append("status = ?")
            params.append(status)
        condition = " AND ".join(conditions)
        total = self._db.query(
            f"SELECT COUNT(*) FROM webhook_deliveries WHERE {condition}", params
        )[0][0]
        rows = self._db.query(
            f"SELECT {_LIST_COLUMNS} FROM webhook_deliveries WHERE {condition} AND position > ?"
            " ORDER BY position LIMIT ?",
            (*params, after, limit + 1),
        )
        items = [msgspec.Raw(msgspec.json.encode(_doc(row))) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, total=total, next_after=rows[limit - 1][-1] if more else None)

    def get(self, tenant_id: UUID, endpoint_id: UUID, delivery_id: UUID) -> msgspec.Raw | None:
        rows = self._db.query(
            f"SELECT {_LIST_COLUMNS}, body FROM webhook_deliveries"
            " WHERE tenant_id = ? AND endpoint_id = ? AND delivery_id = ?",
            (str(tenant_id), str(endpoint_id), str(delivery_id)),
        )
        if not rows:
            return None
        doc = _doc(rows[0][:-1])
        doc["payload"] = from_json(rows[0][-1])
        attempts = self._db.query(
            "SELECT attempt, attempted_at, response_status, duration_ms, response_body, error"
            " FROM webhook_attempts WHERE delivery_id = ? ORDER BY attempt",
            (str(delivery_id),),
        )
        doc["attemptHistory"] = [
            {
                "attempt": number,
                "attemptedAt": _instant(at),
                "responseStatus": response_status,
                "durationMs": duration_ms,
                "responseBody": body,
                "error": error,
            }
            for number, at, response_status, duration_ms, body, error in attempts
        ]
        return msgspec.Raw(msgspec.json.encode(doc))

    def redeliver(
        self, tenant_id: UUID, endpoint_id: UUID, delivery_id: UUID, now: datetime
    ) -> bool:
        """Due now, whatever its state; the retry schedule starts again from its next attempt.
        A send in flight finishes and is recorded, but no longer decides."""
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE webhook_deliveries SET status = 'pending', reason = NULL,"
                " next_attempt_at = ?, leased_by = NULL, retry_base = attempts"
                " WHERE tenant_id = ? AND endpoint_id = ? AND delivery_id = ?",
                (epoch(now), str(tenant_id), str(endpoint_id), str(delivery_id)),
            )
            cur.execute(
                "SELECT 1 FROM webhook_deliveries"
                " WHERE tenant_id = ? AND endpoint_id = ? AND delivery_id = ?",
                (str(tenant_id), str(endpoint_id), str(delivery_id)),
            )
            return cur.fetchone() is not None
