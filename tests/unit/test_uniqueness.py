"""Natural-key uniqueness: deterministic claim ids, and claims that race safely in the store."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from application.errors import ConcurrentWrite
from domain.errors import KeyAlreadyClaimed
from domain.tenant import Tenant
from domain.uniqueness import UniqueKey, unique_key_id
from tests.unit.support import META, memory_log

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

uuids = st.uuids()
# Scopes are "<resource>.<field>" (as the domain documents them).
scopes = st.sampled_from(
    ["tenant.name", "person.employeeReference", "person.email", "invoice.number", "customer.name"]
)
key_values = st.text(min_size=1, max_size=30)
ascii_values = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_.@ ", min_size=1, max_size=30
)
surrounding = st.text(alphabet=" \t\n\r\u00a0\u3000", max_size=4)


def flip_case(text: str, data: st.DataObject) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.swapcase() if f else c for c, f in zip(text, flips, strict=True))


# -- unique_key_id -------------------------------------------------------------------------


@given(scopes, ascii_values, st.none() | uuids, surrounding, surrounding, st.data())
def test_key_id_ignores_case_and_surrounding_space(
    scope: str, value: str, tenant: UUID | None, before: str, after: str, data: st.DataObject
) -> None:
    variant = before + flip_case(value, data) + after
    assert unique_key_id(scope, variant, tenant) == unique_key_id(scope, value, tenant)


@pytest.mark.parametrize(
    ("one", "other"),
    [("Straße", "STRASSE"), ("ÉCOLE", "école"), ("ΣΊΣΥΦΟΣ", "σίσυφος"), ("Ǆemal", "ǆEMAL")],
)
def test_key_id_folds_unicode_case(one: str, other: str) -> None:
    assert unique_key_id("tenant.name", one) == unique_key_id("tenant.name", other)


@given(scopes, ascii_values, ascii_values, st.none() | uuids)
def test_different_values_give_different_ids(
    scope: str, one: str, other: str, tenant: UUID | None
) -> None:
    assume(one.strip().lower() != other.strip().lower())
    assert unique_key_id(scope, one, tenant) != unique_key_id(scope, other, tenant)


@given(scopes, key_values, uuids, uuids)
def test_tenant_scoped_keys_differ_across_tenants(
    scope: str, value: str, tenant_a: UUID, tenant_b: UUID
) -> None:
    assume(tenant_a != tenant_b)
    assert unique_key_id(scope, value, tenant_a) != unique_key_id(scope, value, tenant_b)
    # ...and from the platform-wide key of the same value.
    assert unique_key_id(scope, value, tenant_a) != unique_key_id(scope, value, None)


@given(scopes, key_values, uuids, uuids, st.data())
def test_platform_wide_keys_equal_across_tenants(
    scope: str, value: str, tenant_a: UUID, tenant_b: UUID, data: st.DataObject
) -> None:
    key_a = UniqueKey.claim_new(
        scope=scope, value=value, owner_id=uuid4(), tenant_id=tenant_a, platform_wide=True, at=AT
    )
    key_b = UniqueKey.claim_new(
        scope=scope,
        value=flip_case(value, data),
        owner_id=uuid4(),
        tenant_id=tenant_b,
        platform_wide=True,
        at=AT,
    )
    assert key_a.id == key_b.id == unique_key_id(scope, value)
    scoped_a = UniqueKey.claim_new(
        scope=scope, value=value, owner_id=uuid4(), tenant_id=tenant_a, platform_wide=False, at=AT
    )
    assert scoped_a.id == unique_key_id(scope, value, tenant_a)
    if tenant_a != tenant_b:
        scoped_b = UniqueKey.claim_new(
            scope=scope,
            value=value,
            owner_id=uuid4(),
            tenant_id=tenant_b,
            platform_wide=False,
            at=AT,
        )
        assert scoped_a.id != scoped_b.id


@given(st.lists(scopes, min_size=2, max_size=2, unique=True), key_values, st.none() | uuids)
def test_different_scopes_differ(scope_pair: list[str], value: str, tenant: UUID | None) -> None:
    one, other = scope_pair
    assert unique_key_id(one, value, tenant) != unique_key_id(other, value, tenant)


def test_key_id_is_stable() -> None:
    """The id is a stored fact: the same inputs must give the same id on every run."""
    assert unique_key_id("tenant.name", "Acme") == unique_key_id("tenant.name", " ACME ")
    assert isinstance(unique_key_id("tenant.name", "Acme"), UUID)
    assert unique_key_id("tenant.name", "Acme").version == 5


# -- claim / reclaim / release ---------------------------------------------------------------


def claim(
    scope: str = "person.employeeReference",
    value: str = "E-1",
    owner: UUID | None = None,
    tenant: UUID | None = None,
) -> UniqueKey:
    return UniqueKey.claim_new(
        scope=scope,
        value=value,
        owner_id=owner or uuid4(),
        tenant_id=tenant or uuid4(),
        platform_wide=False,
        at=AT,
    )


@given(scopes, key_values, uuids, uuids)
def test_held_key_cannot_be_reclaimed_by_another_owner(
    scope: str, value: str, owner: UUID, intruder: UUID
) -> None:
    assume(owner != intruder)
    key = claim(scope, value, owner)
    version = key.version
    with pytest.raises(KeyAlreadyClaimed) as caught:
        key.reclaim(value=value, owner_id=intruder, tenant_id=key.tenant_id, at=AT)
    # The error names the field as the API spells it: the part after the resource.
    assert caught.value.field == scope.split(".", 1)[1]
    assert caught.value.value == value
    assert caught.value.code == "duplicate"
    assert key.owner_id == owner
    assert key.version == version
    assert len(key.pending_events) == 1


@given(key_values, uuids, uuids)
def test_released_key_can_be_reclaimed(value: str, owner: UUID, newcomer: UUID) -> None:
    key = claim(value="E-1", owner=owner)
    key.release(owner_id=owner, at=AT)
    assert key.owner_id is None
    assert key.version == 2
    key.reclaim(value=value, owner_id=newcomer, tenant_id=key.tenant_id, at=AT)
    assert key.owner_id == newcomer
    assert key.value == value
    assert key.version == 3


@given(uuids)
def test_reclaim_by_the_same_owner_records_nothing(owner: UUID) -> None:
    key = claim(owner=owner)
    key.reclaim(value="E-1", owner_id=owner, tenant_id=key.tenant_id, at=AT)
    assert key.version == 1
    assert len(key.pending_events) == 1
    assert key.owner_id == owner


@given(uuids, uuids)
def test_only_the_holder_can_release(owner: UUID, stranger: UUID) -> None:
    assume(owner != stranger)
    key = claim(owner=owner)
    key.release(owner_id=stranger, at=AT)
    assert key.owner_id == owner
    assert key.version == 1
    with pytest.raises(KeyAlreadyClaimed):
        key.reclaim(value="E-1", owner_id=stranger, tenant_id=key.tenant_id, at=AT)


def test_claim_events_are_not_audited() -> None:
    key = claim()
    assert all(not type(e).audited for e in key.pending_events)
    tenant = provision_tenant("Acme")
    assert all(type(e).audited for e in tenant.pending_events)


# -- racing claims in the store ------------------------------------------------------------


def provision_tenant(name: str) -> Tenant:
    return Tenant.provision(
        tenant_id=uuid4(),
        name=name,
        contact_email="ops@example.com",
        phone_number=None,
        industry=None,
        plan=None,
        currency=None,
        timezone=None,
        provisioned_by="user:admin",
        at=AT,
    )


def tenant_with_name_claim(name: str) -> tuple[Tenant, UniqueKey]:
    tenant = provision_tenant(name)
    key = UniqueKey.claim_new(
        scope="tenant.name",
        value=name,
        owner_id=tenant.id,
        tenant_id=tenant.id,
        platform_wide=True,
        at=AT,
    )
    return tenant, key


@pytest.mark.parametrize("second_name", ["Acme", " ACME ", "acme"])
def test_second_claim_of_the_same_key_writes_nothing(second_name: str) -> None:
    log = memory_log()
    first, first_key = tenant_with_name_claim("Acme")
    log.record(first, first_key, meta=META)
    head = log.head()

    second, second_key = tenant_with_name_claim(second_name)
    assert second_key.id == first_key.id
    with pytest.raises(ConcurrentWrite):
        log.record(second, second_key, meta=META)

    assert log.load(Tenant, second.id) is None
    assert log.history(second.id) == []
    assert log.head() == head
    stored_key = log.load(UniqueKey, first_key.id)
    assert stored_key is not None
    assert stored_key.owner_id == first.id
    assert stored_key.version == 1
    assert [r.event.originator_id for r in log.read(0, 10)] == [first.id, first_key.id]


def test_tenant_scoped_claims_do_not_collide_across_tenants() -> None:
    log = memory_log()
    tenant_a, tenant_b = uuid4(), uuid4()
    for tenant in (tenant_a, tenant_b):
        key = UniqueKey.claim_new(
            scope="person.email",
            value="ada@example.com",
            owner_id=uuid4(),
            tenant_id=tenant,
            platform_wide=False,
            at=AT,
        )
        log.record(key, meta=META)
    assert log.head() == 2


def test_released_key_is_reclaimed_once_when_two_race() -> None:
    log = memory_log()
    old_owner, key = tenant_with_name_claim("Acme")
    log.record(old_owner, key, meta=META)
    key.release(owner_id=old_owner.id, at=AT)  # the old owner renamed itself
    log.record(key, meta=META)

    first_view = log.load(UniqueKey, key.id)
    second_view = log.load(UniqueKey, key.id)
    assert first_view is not None
    assert second_view is not None
    winner, loser = provision_tenant("Acme"), provision_tenant("acme")
    first_view.reclaim(value="Acme", owner_id=winner.id, tenant_id=winner.id, at=AT)
    second_view.reclaim(value="acme", owner_id=loser.id, tenant_id=loser.id, at=AT)
    log.record(winner, first_view, meta=META)
    with pytest.raises(ConcurrentWrite):
        log.record(loser, second_view, meta=META)

    assert log.load(Tenant, loser.id) is None
    stored = log.load(UniqueKey, key.id)
    assert stored is not None
    assert stored.owner_id == winner.id
    assert stored.version == 3
    with pytest.raises(KeyAlreadyClaimed) as caught:
        stored.reclaim(value="ACME", owner_id=loser.id, tenant_id=loser.id, at=AT)
    assert caught.value.field == "name"


def test_reclaimed_platform_key_belongs_to_the_new_tenant() -> None:
    first, key = tenant_with_name_claim("Acme")
    key.release(owner_id=first.id, at=AT)
    second = provision_tenant("Acme")
    key.reclaim(value="Acme", owner_id=second.id, tenant_id=second.id, at=AT)
    assert key.pending_events[-1].tenant_id == second.id
    key.release(owner_id=second.id, at=AT)
    assert key.pending_events[-1].tenant_id == second.id
    assert key.tenant_id == second.id
