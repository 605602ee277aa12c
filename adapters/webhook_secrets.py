"""Webhook signing secrets in the application's database, beside the event log (never in it)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from application.ports import SqlDatabase

SECRETS_DDL = (
    "CREATE TABLE IF NOT EXISTS webhook_secrets ("
    " tenant_id TEXT NOT NULL, secret_id TEXT NOT NULL, secret TEXT NOT NULL,"
    " PRIMARY KEY (tenant_id, secret_id))"
)


class SqlWebhookSecrets:
    """Implements application.ports.WebhookSecrets. A secret whose event was never recorded
    (the command failed after storing it) is an orphan no event names: harmless."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def setup(self) -> None:
        with self._db.transaction() as cur:
            cur.execute(SECRETS_DDL)

    def put(self, tenant_id: UUID, secret_id: UUID, secret: str) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO webhook_secrets (tenant_id, secret_id, secret) VALUES (?, ?, ?)",
                (str(tenant_id), str(secret_id), secret),
            )

    def get(self, tenant_id: UUID, secret_ids: Sequence[UUID]) -> dict[UUID, str]:
        if not secret_ids:
            return {}
        marks = ", ".join("?" for _ in secret_ids)
        rows = self._db.query(
            f"SELECT secret_id, secret FROM webhook_secrets WHERE tenant_id = ?"
            f" AND secret_id IN ({marks})",
            (str(tenant_id), *(str(i) for i in secret_ids)),
        )
        return {UUID(row[0]): row[1] for row in rows}
