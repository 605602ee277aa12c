"""The idempotency-key store on SQLite and PostgreSQL: claims, replays, mismatches, the lease,
retention and purge, and simultaneous requests with one key (threads, one connection each, like
separate server processes)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from adapters.idempotency_store import SqlIdempotencyStore
from application.idempotency import Claim, IdempotencyScope, StoredResponse
from application.ports import SqlDatabase
from entrypoints.container import open_database
from tests.conftest import settings_for

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = IdempotencyScope(tenant_id=UUID(int=1), actor="user:alice")
CREATED = StoredResponse(
    status=201,
    headers=(("content-type", "application/json"), ("location", "/api/v1/people/1")),
    body=b'{"personId": "1"}',
)
RACERS = 6


@pytest.fixture
def open_db(database_url: str, tmp_path: Path) -> Iterator[Callable[[], SqlDatabase]]:
    opened: list[SqlDatabase] = []

    def make() -> SqlDatabase:
        db = open_database(settings_for(database_url, tmp_path))
        opened.append(db)
        return db

    yield make
    for db in opened:
        db.close()


@pytest.fixture
def store(open_db: Callable[[], SqlDatabase]) -> SqlIdempotencyStore:
    store = SqlIdempotencyStore(open_db())
    store.setup()
    return store


def rows(store: SqlIdempotencyStore) -> int:
    count: int = store._db.query("SELECT COUNT(*) FROM idempotency_keys")[0][0]
    return count


def test_a_new_key_starts_and_its_answer_is_replayed(store: SqlIdempotencyStore) -> None:
    claim = store.begin(ALICE, "k1", "fp", T0)
    assert claim.outcome == "started"
    assert claim.token
    assert store.begin(ALICE, "k1", "fp", T0 + timedelta(seconds=1)).outcome == "in_flight"

    store.finish(ALICE, "k1", claim.token, CREATED)

    again = store.begin(ALICE, "k1", "fp", T0 + timedelta(hours=23))
    assert again == Claim("replay", response=CREATED)


def test_the_same_key_for_another_request_is_a_mismatch_running_or_done(
    store: SqlIdempotencyStore,
) -> None:
    claim = store.begin(ALICE, "k1", "fp", T0)
    assert store.begin(ALICE, "k1", "other", T0).outcome == "mismatch"
    store.finish(ALICE, "k1", claim.token, CREATED)
    assert store.begin(ALICE, "k1", "other", T0).outcome == "mismatch"


def test_keys_are_scoped_to_tenant_and_actor(store: SqlIdempotencyStore) -> None:
    bob = IdempotencyScope(tenant_id=UUID(int=1), actor="user:bob")
    alice_elsewhere = IdempotencyScope(tenant_id=UUID(int=2), actor="user:alice")
    platform_alice = IdempotencyScope(tenant_id=None, actor="user:alice")
    for scope in (ALICE, bob, alice_elsewhere, platform_alice):
        assert store.begin(scope, "k1", "fp", T0).outcome == "started", scope
    assert rows(store) == 4


def test_a_released_key_may_be_used_again_even_for_another_request(
    store: SqlIdempotencyStore,
) -> None:
    claim = store.begin(ALICE, "k1", "fp", T0)
    store.release(ALICE, "k1", claim.token)
    assert rows(store) == 0
    assert store.begin(ALICE, "k1", "other", T0).outcome == "started"


def test_an_answer_too_large_to_keep_is_remembered_without_a_body(
    store: SqlIdempotencyStore,
) -> None:
    claim = store.begin(ALICE, "k1", "fp", T0)
    store.finish(ALICE, "k1", claim.token, StoredResponse(status=200, headers=(), body=None))
    replay = store.begin(ALICE, "k1", "fp", T0)
    assert replay.outcome == "replay"
    assert replay.response == StoredResponse(status=200, headers=(), body=None)


def test_binary_and_empty_bodies_come_back_byte_for_byte(store: SqlIdempotencyStore) -> None:
    for key, body in (("bin", bytes(range(256)) * 4), ("empty", b"")):
        claim = store.begin(ALICE, key, "fp", T0)
        store.finish(ALICE, key, claim.token, StoredResponse(status=204, headers=(), body=body))
        response = store.begin(ALICE, key, "fp", T0).response
        assert response is not None
        assert response.body == body


def test_an_unfinished_request_past_the_lease_is_taken_over(store: SqlIdempotencyStore) -> None:
    crashed = store.begin(ALICE, "k1", "fp", T0)
    assert store.begin(ALICE, "k1", "fp", T0 + timedelta(seconds=59)).outcome == "in_flight"

    successor = store.begin(ALICE, "k1", "fp", T0 + timedelta(seconds=61))
    assert successor.outcome == "started"
    assert successor.token != crashed.token
    # The crashed request, should it come back, neither overwrites nor frees the key.
    store.finish(ALICE, "k1", crashed.token, StoredResponse(status=500, headers=(), body=b"x"))
    store.release(ALICE, "k1", crashed.token)
    assert store.begin(ALICE, "k1", "fp", T0 + timedelta(seconds=62)).outcome == "in_flight"
    store.finish(ALICE, "k1", successor.token, CREATED)
    assert store.begin(ALICE, "k1", "fp", T0 + timedelta(seconds=63)).response == CREATED


def test_the_lease_does_not_excuse_another_body(store: SqlIdempotencyStore) -> None:
    store.begin(ALICE, "k1", "fp", T0)
    assert store.begin(ALICE, "k1", "other", T0 + timedelta(minutes=5)).outcome == "mismatch"


def test_a_key_older_than_24_hours_is_as_if_absent_even_unpurged(
    open_db: Callable[[], SqlDatabase],
) -> None:
    store = SqlIdempotencyStore(open_db(), purge_every=timedelta(days=365))
    store.setup()
    claim = store.begin(ALICE, "k1", "fp", T0)
    store.finish(ALICE, "k1", claim.token, CREATED)
    late = T0 + timedelta(hours=24, seconds=1)
    assert store.begin(ALICE, "k1", "fp", T0 + timedelta(hours=23, minutes=59)).outcome == "replay"
    assert store.begin(ALICE, "k1", "another body", late).outcome == "started"


def test_purge_deletes_only_keys_past_retention(store: SqlIdempotencyStore) -> None:
    store.begin(ALICE, "old", "fp", T0)
    store.begin(ALICE, "new", "fp", T0 + timedelta(hours=2))
    assert store.purge(T0 + timedelta(hours=25)) == 1
    assert store._db.query("SELECT idempotency_key FROM idempotency_keys") == [("new",)]


def test_begin_purges_at_most_once_a_minute(
    store: SqlIdempotencyStore, open_db: Callable[[], SqlDatabase]
) -> None:
    SqlIdempotencyStore(open_db()).begin(ALICE, "old", "fp", T0)  # another process's key
    day = T0 + timedelta(hours=24)
    store.begin(ALICE, "x", "fp", day - timedelta(seconds=10))  # purges: "old" not yet expired
    store.begin(ALICE, "y", "fp", day + timedelta(seconds=20))  # "old" expired, purged <1 min ago
    assert rows(store) == 3
    store.begin(ALICE, "z", "fp", day + timedelta(seconds=80))
    keys = {r[0] for r in store._db.query("SELECT idempotency_key FROM idempotency_keys")}
    assert keys == {"x", "y", "z"}


def test_setup_twice_is_harmless(store: SqlIdempotencyStore) -> None:
    store.begin(ALICE, "k1", "fp", T0)
    store.setup()
    assert rows(store) == 1


# -- simultaneous requests ---------------------------------------------------------------------


def race(stores: list[SqlIdempotencyStore], attempt: Callable[[SqlIdempotencyStore], Claim]):
    barrier = threading.Barrier(len(stores))
    claims: list[Claim] = []
    errors: list[BaseException] = []

    def run(s: SqlIdempotencyStore) -> None:
        barrier.wait()
        try:
            claims.append(attempt(s))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return claims


def racing_stores(open_db: Callable[[], SqlDatabase]) -> list[SqlIdempotencyStore]:
    stores = [SqlIdempotencyStore(open_db()) for _ in range(RACERS)]
    stores[0].setup()
    return stores


@pytest.mark.parametrize("round_", range(3))
def test_of_simultaneous_first_requests_exactly_one_starts(
    open_db: Callable[[], SqlDatabase], round_: int
) -> None:
    stores = racing_stores(open_db)
    claims = race(stores, lambda s: s.begin(ALICE, f"race-{round_}", "fp", T0))
    assert sorted(c.outcome for c in claims) == ["in_flight"] * (RACERS - 1) + ["started"]
    assert rows(stores[0]) == 1


def test_simultaneous_retries_of_a_finished_request_all_replay(
    open_db: Callable[[], SqlDatabase],
) -> None:
    stores = racing_stores(open_db)
    first = stores[0].begin(ALICE, "k1", "fp", T0)
    stores[0].finish(ALICE, "k1", first.token, CREATED)
    claims = race(stores, lambda s: s.begin(ALICE, "k1", "fp", T0 + timedelta(seconds=1)))
    assert claims == [Claim("replay", response=CREATED)] * RACERS


def test_of_simultaneous_takeovers_of_an_abandoned_request_exactly_one_starts(
    open_db: Callable[[], SqlDatabase],
) -> None:
    stores = racing_stores(open_db)
    stores[0].begin(ALICE, "k1", "fp", T0)
    claims = race(stores, lambda s: s.begin(ALICE, "k1", "fp", T0 + timedelta(minutes=2)))
    assert sorted(c.outcome for c in claims) == ["in_flight"] * (RACERS - 1) + ["started"]


def test_simultaneous_requests_racing_a_release_never_fail(
    open_db: Callable[[], SqlDatabase],
) -> None:
    stores = racing_stores(open_db)
    owner = stores[0].begin(ALICE, "k1", "fp", T0)

    def attempt(s: SqlIdempotencyStore) -> Claim:
        if s is stores[0]:
            s.release(ALICE, "k1", owner.token)
            return Claim("started", "released")
        return s.begin(ALICE, "k1", "fp", T0)

    claims = race(stores, attempt)
    others = [c.outcome for c in claims if c.token != "released"]
    assert others.count("started") <= 1
    assert set(others) <= {"started", "in_flight"}
