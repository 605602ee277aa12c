"""API-key HMACs in the application's database, beside the event log (never in it).

Implements application.api_keys.ApiKeyHashes. A hash id's HMAC never changes, so hashes once
read are kept in a small per-process cache: authenticating a key then costs one read of the
event log (the aggregate, which is what must be current) and no other query.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from uuid import UUID

from application.ports import SqlDatabase

HASHES_DDL = (
    "CREATE TABLE IF NOT EXISTS api_key_hashes ("
    " tenant_id TEXT NOT NULL, hash_id TEXT NOT NULL, key_hash TEXT NOT NULL,"
    " PRIMARY KEY (tenant_id, hash_id))"
)


class SqlApiKeyHashes:
    """An HMAC whose event was never recorded (the command failed after storing it) is an
    orphan no event names: harmless."""

    def __init__(self, db: SqlDatabase, *, cache_size: int = 10_000) -> None:
        self._db = db
        self._cache: OrderedDict[tuple[UUID, UUID], str] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def setup(self) -> None:
        with self._db.transaction() as cur:
            cur.execute(HASHES_DDL)

    def put(self, tenant_id: UUID, hash_id: UUID, key_hash: str) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT INTO api_key_hashes (tenant_id, hash_id, key_hash) VALUES (?, ?, ?)",
                (str(tenant_id), str(hash_id), key_hash),
            )

    def get(self, tenant_id: UUID, hash_ids: Sequence[UUID]) -> dict[UUID, str]:
        found: dict[UUID, str] = {}
        with self._lock:
            for hash_id in hash_ids:
                cached = self._cache.get((tenant_id, hash_id))
                if cached is not None:
                    found[hash_id] = cached
        missing = [i for i in hash_ids if i not in found]
        if missing:
            marks = ", ".join("?" for _ in missing)
            rows = self._db.query(
                f"SELECT hash_id, key_hash FROM api_key_hashes WHERE tenant_id = ?"
                f" AND hash_id IN ({marks})",
                (str(tenant_id), *(str(i) for i in missing)),
            )
            with self._lock:
                for hash_id_text, key_hash in rows:
                    hash_id = UUID(hash_id_text)
                    found[hash_id] = key_hash
                    self._cache[(tenant_id, hash_id)] = key_hash
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return found
