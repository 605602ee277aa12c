"""Photos and other binary content, stored content-addressed in the read-model database."""

from __future__ import annotations

from uuid import UUID

from application.ports import SqlDatabase

BLOBS_DDL = (
    "CREATE TABLE IF NOT EXISTS blobs ("
    " tenant_id TEXT NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL,"
    " data BYTEA NOT NULL, PRIMARY KEY (tenant_id, sha256))"
)


class SqlBlobStore:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def setup(self) -> None:
        ddl = BLOBS_DDL if self._db.dialect == "postgresql" else BLOBS_DDL.replace("BYTEA", "BLOB")
        with self._db.transaction() as cur:
            cur.execute(ddl)

    def put(self, tenant_id: UUID, sha256: str, content_type: str, data: bytes) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO blobs (tenant_id, sha256, content_type, data) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, sha256) DO NOTHING",
                (str(tenant_id), sha256, content_type, data),
            )

    def get(self, tenant_id: UUID, sha256: str) -> tuple[str, bytes] | None:
        rows = self._db.query(
            "SELECT content_type, data FROM blobs WHERE tenant_id = ? AND sha256 = ?",
            (str(tenant_id), sha256),
        )
        return (rows[0][0], bytes(rows[0][1])) if rows else None
