"""Black-box tests of /api/v1/customers: customers and their contacts, names unique per tenant,
full replacement with If-Match, validation naming fields, roles, tenant isolation, suspended
tenants and the audit trail (API.md, "Customers, engagements, squads, work"); plus replay of the
read model, natural keys under real concurrency, and `require_customer` for other use cases."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from application.authorization import Principal, permissions_for
from application.context import Context
from application.customers import (
    AddContact,
    ContactWritten,
    CreateCustomer,
    CustomerCommands,
    require_customer,
)
from application.errors import InvalidRequest
from domain.customer import Customer
from domain.errors import KeyAlreadyClaimed
from entrypoints.container import Services
from tests.api.problems import problem
from tests.conftest import Api

# -- helpers ------------------------------------------------------------------------------

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CUSTOMER_KEYS = {
    "customerId",
    "name",
    "email",
    "phoneNumber",
    "billingAddress",
    "currency",
    "status",
    "contactCount",
    "createdAt",
    "updatedAt",
}
CONTACT_KEYS = {"contactId", "name", "email", "phoneNumber", "role", "createdAt"}
READ_ONLY_ROLES = ["project-manager", "squad-lead", "finance", "auditor"]


def admin_of(api: Api, tenant_id: str, sub: str = "sales-admin") -> dict[str, str]:
    return api.as_("customer-admin", tenant=tenant_id, sub=sub)


def customer_body(**fields: Any) -> dict[str, Any]:
    return {"name": f"Customer {uuid.uuid4().hex[:8]}", **fields}


def create(api: Api, tenant_id: str, **fields: Any) -> dict[str, Any]:
    response = api.request(
        "POST", "/customers", json=customer_body(**fields), auth=admin_of(api, tenant_id)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def add_contact(api: Api, tenant_id: str, customer_id: str, **fields: Any) -> Any:
    body = {"name": "Ada Lovelace", "email": f"ada.{uuid.uuid4().hex[:6]}@acme.example", **fields}
    return api.request(
        "POST", f"/customers/{customer_id}/contacts", json=body, auth=admin_of(api, tenant_id)
    )


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()["customers"]]


FULL = {
    "name": "Acme Industries",
    "email": "billing@acme.example",
    "phoneNumber": "+44 20 7946 0000",
    "billingAddress": {
        "line1": "1 Main Street",
        "line2": "Floor 3",
        "city": "London",
        "postalCode": "SW1A 1AA",
        "country": "GB",
    },
    "currency": "GBP",
}


# -- creating and reading ---------------------------------------------------------------------


def test_create_returns_201_with_the_customer(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]

    response = api.request("POST", "/customers", json=FULL, auth=admin_of(api, tenant_id))

    assert response.status_code == 201, response.text
    customer = response.json()
    customer_id = customer["customerId"]
    assert str(uuid.UUID(customer_id)) == customer_id
    assert customer.keys() == CUSTOMER_KEYS
    assert response.headers["location"] == f"/api/v1/customers/{customer_id}"
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["x-log-position"]) >= 1
    for key, value in FULL.items():
        assert customer[key] == value, key
    assert customer["status"] == "active"
    assert customer["contactCount"] == 0
    assert INSTANT.match(customer["createdAt"])
    assert customer["updatedAt"] == customer["createdAt"]

    for role in READ_ONLY_ROLES:
        fetched = api.request(
            "GET", f"/customers/{customer_id}", auth=api.as_(role, tenant=tenant_id)
        )
        assert fetched.status_code == 200, (role, fetched.text)
        assert fetched.headers["etag"] == '"1"'
        assert fetched.json() == customer


def test_optional_fields_default_to_null_and_codes_are_normalised(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    bare = create(sqlite_api, tenant_id, name="  Bare Minimum  ")
    assert bare["name"] == "Bare Minimum"
    for key in ("email", "phoneNumber", "billingAddress", "currency"):
        assert bare[key] is None, key

    lower = create(
        sqlite_api,
        tenant_id,
        currency="eur",
        billingAddress={"line1": "Hauptstr. 1", "city": "Berlin", "country": "de"},
    )
    assert lower["currency"] == "EUR"
    assert lower["billingAddress"] == {
        "line1": "Hauptstr. 1",
        "line2": None,
        "city": "Berlin",
        "postalCode": None,
        "country": "DE",
    }


def test_list_filters_by_name_and_pages_in_creation_order(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = api.as_("finance", tenant=tenant_id)
    for name in ("Acme", "Globex", "ACME Labs", "Initech", "100%_Pure"):
        create(api, tenant_id, name=name)

    everyone = api.request("GET", "/customers", auth=auth)
    assert names(everyone) == ["Acme", "Globex", "ACME Labs", "Initech", "100%_Pure"]
    assert everyone.json()["totalCount"] == 5
    assert everyone.json()["nextCursor"] is None

    matching = api.request("GET", "/customers", params={"q": "acme"}, auth=auth)
    assert names(matching) == ["Acme", "ACME Labs"]
    assert matching.json()["totalCount"] == 2
    # LIKE wildcards in q are literal text.
    for wildcard in ("%", "_", "%_"):
        found = api.request("GET", "/customers", params={"q": wildcard}, auth=auth)
        assert names(found) == ["100%_Pure"], wildcard

    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = api.request("GET", "/customers", params=params, auth=auth)
        seen += names(response)
        assert response.json()["totalCount"] == 5
        cursor = response.json()["nextCursor"]
    assert cursor is None
    assert seen == names(everyone)


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "limit"), ("limit=201", "limit"), ("cursor=bogus", "cursor")],
)
def test_bad_paging_parameters_are_400(sqlite_api: Api, query: str, field: str) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    customer_id = create(sqlite_api, tenant_id)["customerId"]
    auth = sqlite_api.as_("auditor", tenant=tenant_id)
    for path in ("/customers", f"/customers/{customer_id}/contacts"):
        problem(sqlite_api.request("GET", f"{path}?{query}", auth=auth), 400, field=field)


def test_duplicate_name_is_409_case_insensitively_but_fine_in_another_tenant(api: Api) -> None:
    tenant_a = api.provision()["tenantId"]
    tenant_b = api.provision()["tenantId"]
    first = create(api, tenant_a, name="Acme Industries")
    auth_a = admin_of(api, tenant_a)

    for clash in ("acme industries", "  ACME Industries "):
        problem(
            api.request("POST", "/customers", json=customer_body(name=clash), auth=auth_a),
            409,
            code="duplicate",
            field="name",
        )
    listed = api.request("GET", "/customers", auth=auth_a).json()["customers"]
    assert [c["customerId"] for c in listed] == [first["customerId"]]

    elsewhere = create(api, tenant_b, name="Acme Industries")
    assert elsewhere["customerId"] != first["customerId"]


# -- replacing --------------------------------------------------------------------------------


def test_put_replaces_everything_and_moves_the_name(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = admin_of(api, tenant_id)
    customer = create(api, tenant_id, **FULL)
    path = f"/customers/{customer['customerId']}"

    replaced = api.request(
        "PUT", path, json={"name": "Acme Holdings"}, auth=auth, headers={"If-Match": '"1"'}
    )

    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["name"] == "Acme Holdings"
    for key in ("email", "phoneNumber", "billingAddress", "currency"):
        assert body[key] is None, key  # a PUT is a full replacement: absent means cleared
    assert body["createdAt"] == customer["createdAt"]
    assert body["updatedAt"] >= customer["updatedAt"]
    assert replaced.headers["etag"] == '"2"'
    assert int(replaced.headers["x-log-position"]) > 0
    assert api.request("GET", path, auth=auth).json() == body
    assert names(api.request("GET", "/customers", params={"q": "holdings"}, auth=auth)) == [
        "Acme Holdings"
    ]

    # The old name is free again; the new one is taken.
    create(api, tenant_id, name="acme industries")
    problem(
        api.request("POST", "/customers", json={"name": "ACME HOLDINGS"}, auth=auth),
        409,
        field="name",
    )
    # Renaming onto another customer's name is a 409 that changes nothing.
    other = create(api, tenant_id, name="Globex")
    problem(
        api.request(
            "PUT", f"/customers/{other['customerId']}", json={"name": "acme holdings"}, auth=auth
        ),
        409,
        code="duplicate",
        field="name",
    )
    assert api.request("GET", f"/customers/{other['customerId']}", auth=auth).json() == other


def test_put_honours_if_match_and_an_unchanged_put_records_nothing(sqlite_api: Api) -> None:
    api = sqlite_api
    tenant_id = api.provision()["tenantId"]
    auth = admin_of(api, tenant_id)
    customer = create(api, tenant_id, **FULL)
    path = f"/customers/{customer['customerId']}"

    stale = api.request(
        "PUT", path, json={**FULL, "name": "X"}, auth=auth, headers={"If-Match": '"7"'}
    )
    problem(stale, 412, code="precondition-failed")
    problem(api.request("PUT", path, json=FULL, auth=auth, headers={"If-Match": "nonsense"}), 412)
    assert api.request("GET", path, auth=auth).json() == customer

    head = api.services.log.head()
    same = api.request("PUT", path, json=FULL, auth=auth, headers={"If-Match": 'W/"1"'})
    assert same.status_code == 200, same.text
    assert same.headers["etag"] == '"1"'
    assert same.headers["x-log-position"] == str(head)
    assert api.services.log.head() == head
    assert same.json() == customer

    changed = api.request(
        "PUT", path, json={**FULL, "currency": "USD"}, auth=auth, headers={"If-Match": "*"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["currency"] == "USD"
    assert changed.headers["etag"] == '"2"'


# -- validation -------------------------------------------------------------------------------

ADDRESS = {"line1": "1 Main Street", "city": "London", "country": "GB"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"billingAddress": {**ADDRESS, "country": "UK"}}, "billingAddress.country"),
        ({"billingAddress": {**ADDRESS, "country": "XK"}}, "billingAddress.country"),
        ({"billingAddress": {**ADDRESS, "line1": " "}}, "billingAddress.line1"),
        ({"billingAddress": {**ADDRESS, "postalCode": "p" * 21}}, "billingAddress.postalCode"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "ZZZ"}, "currency"),
        ({"email": "billing-at-acme"}, "email"),
        ({"phoneNumber": "call us"}, "phoneNumber"),
        ({"name": ""}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"name": 42}, "name"),
        ({"vatNumber": "GB123"}, "vatNumber"),
    ],
)
def test_invalid_create_and_put_are_400_naming_the_field(
    sqlite_api: Api, fields: dict[str, Any], field: str
) -> None:
    api = sqlite_api
    tenant_id = api.provision()["tenantId"]
    auth = admin_of(api, tenant_id)
    body = customer_body(**fields)
    problem(api.request("POST", "/customers", json=body, auth=auth), 400, field=field)
    assert api.request("GET", "/customers", auth=auth).json()["totalCount"] == 0

    customer = create(api, tenant_id)
    path = f"/customers/{customer['customerId']}"
    problem(api.request("PUT", path, json=body, auth=auth), 400, field=field)
    assert api.request("GET", path, auth=auth).json() == customer


def test_missing_name_and_non_json_bodies_are_refused(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    auth = admin_of(sqlite_api, tenant_id)
    problem(sqlite_api.request("POST", "/customers", json={}, auth=auth), 400, field="name")
    for address in ({"line1": "1 Main Street", "country": "GB"}, {**ADDRESS, "state": "CA"}):
        body = problem(
            sqlite_api.request(
                "POST", "/customers", json=customer_body(billingAddress=address), auth=auth
            ),
            400,
        )
        assert body["errors"][0]["field"].startswith("billingAddress"), body
    problem(
        sqlite_api.request(
            "POST",
            "/customers",
            content=b"name=Acme",
            auth=auth,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        415,
    )


# -- contacts ---------------------------------------------------------------------------------


def test_contacts_are_added_listed_and_counted(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    customer = create(api, tenant_id)
    customer_id = customer["customerId"]
    path = f"/customers/{customer_id}/contacts"
    reader = api.as_("project-manager", tenant=tenant_id)

    empty = api.request("GET", path, auth=reader)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"contacts": [], "totalCount": 0, "nextCursor": None}

    first = add_contact(
        api,
        tenant_id,
        customer_id,
        name=" Ada Lovelace ",
        email="Ada@Acme.example",
        phoneNumber="+1 555 0100",
        role="Buyer",
    )
    assert first.status_code == 201, first.text
    contact = first.json()
    assert contact.keys() == CONTACT_KEYS
    assert contact["name"] == "Ada Lovelace"
    assert contact["email"] == "Ada@Acme.example"
    assert contact["phoneNumber"] == "+1 555 0100"
    assert contact["role"] == "Buyer"
    assert INSTANT.match(contact["createdAt"])
    contact_id = contact["contactId"]
    assert str(uuid.UUID(contact_id)) == contact_id
    assert first.headers["location"] == f"/api/v1/customers/{customer_id}/contacts/{contact_id}"
    assert first.headers["etag"] == '"2"'  # the customer's version
    assert int(first.headers["x-log-position"]) > 0
    fetched = api.request("GET", first.headers["location"].removeprefix("/api/v1"), auth=reader)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == contact

    second = add_contact(api, tenant_id, customer_id, name="Grace Hopper")
    assert second.status_code == 201, second.text
    assert second.json()["phoneNumber"] is None
    assert second.json()["role"] is None

    listed = api.request("GET", path, auth=reader)
    assert listed.json() == {
        "contacts": [contact, second.json()],
        "totalCount": 2,
        "nextCursor": None,
    }
    paged = api.request("GET", path, params={"limit": 1}, auth=reader).json()
    assert paged["contacts"] == [contact]
    assert paged["totalCount"] == 2
    rest = api.request("GET", path, params={"cursor": paged["nextCursor"]}, auth=reader).json()
    assert rest["contacts"] == [second.json()]

    now = api.request("GET", f"/customers/{customer_id}", auth=reader)
    assert now.json()["contactCount"] == 2
    assert now.headers["etag"] == '"3"'
    assert now.json()["updatedAt"] >= customer["updatedAt"]


def test_contact_emails_are_unique_within_a_customer(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    acme = create(api, tenant_id)["customerId"]
    globex = create(api, tenant_id)["customerId"]
    assert add_contact(api, tenant_id, acme, email="ada@acme.example").status_code == 201

    problem(
        add_contact(api, tenant_id, acme, email=" ADA@acme.EXAMPLE "),
        409,
        code="duplicate",
        field="email",
    )
    # Another customer may have a contact with the same address.
    assert add_contact(api, tenant_id, globex, email="ada@acme.example").status_code == 201
    listed = api.request("GET", f"/customers/{acme}/contacts", auth=admin_of(api, tenant_id))
    assert listed.json()["totalCount"] == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "ada-at-acme"}, "email"),
        ({"name": " "}, "name"),
        ({"phoneNumber": "ring"}, "phoneNumber"),
        ({"role": "r" * 101}, "role"),
        ({"title": "Dr"}, "title"),
    ],
)
def test_invalid_contacts_are_400_naming_the_field(
    sqlite_api: Api, fields: dict[str, Any], field: str
) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    customer_id = create(sqlite_api, tenant_id)["customerId"]
    problem(add_contact(sqlite_api, tenant_id, customer_id, **fields), 400, field=field)
    customer = sqlite_api.request(
        "GET", f"/customers/{customer_id}", auth=admin_of(sqlite_api, tenant_id)
    )
    assert customer.json()["contactCount"] == 0


def test_a_contact_without_an_email_is_400(sqlite_api: Api) -> None:
    tenant_id = sqlite_api.provision()["tenantId"]
    customer_id = create(sqlite_api, tenant_id)["customerId"]
    response = sqlite_api.request(
        "POST",
        f"/customers/{customer_id}/contacts",
        json={"name": "Ada"},
        auth=admin_of(sqlite_api, tenant_id),
    )
    problem(response, 400, field="email")


# -- roles, tenants ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", READ_ONLY_ROLES)
def test_roles_with_customer_read_can_read_but_not_write(sqlite_api: Api, role: str) -> None:
    api = sqlite_api
    tenant_id = api.provision()["tenantId"]
    customer = create(api, tenant_id)
    path = f"/customers/{customer['customerId']}"
    assert add_contact(api, tenant_id, customer["customerId"]).status_code == 201
    auth = api.as_(role, tenant=tenant_id)

    for url in ("/customers", path, f"{path}/contacts"):
        assert api.request("GET", url, auth=auth).status_code == 200, (role, url)
    for method, url, body in (
        ("POST", "/customers", customer_body()),
        ("PUT", path, customer_body()),
        ("POST", f"{path}/contacts", {"name": "Eve", "email": "eve@acme.example"}),
    ):
        problem(api.request(method, url, json=body, auth=auth), 403, code="forbidden")
    unchanged = api.request("GET", path, auth=auth).json()
    assert (unchanged["name"], unchanged["contactCount"]) == (customer["name"], 1)
    assert api.request("GET", "/customers", auth=auth).json()["totalCount"] == 1


def test_members_have_no_customer_access(sqlite_api: Api) -> None:
    api = sqlite_api
    tenant_id = api.provision()["tenantId"]
    customer = create(api, tenant_id)
    path = f"/customers/{customer['customerId']}"
    auth = api.as_("member", tenant=tenant_id)
    for url in ("/customers", path, f"{path}/contacts"):
        problem(api.request("GET", url, auth=auth), 403, code="forbidden")
    problem(api.request("POST", "/customers", json=customer_body(), auth=auth), 403)
    problem(api.request("GET", "/customers"), 401)


def test_another_tenants_customer_is_not_found(api: Api) -> None:
    tenant_a = api.provision()["tenantId"]
    tenant_b = api.provision()["tenantId"]
    customer = create(api, tenant_a)
    path = f"/customers/{customer['customerId']}"
    add_contact(api, tenant_a, customer["customerId"])
    contact_id = api.request("GET", f"{path}/contacts", auth=admin_of(api, tenant_a)).json()[
        "contacts"
    ][0]["contactId"]
    auth_b = admin_of(api, tenant_b)

    for method, url, body in (
        ("GET", path, None),
        ("PUT", path, customer_body()),
        ("GET", f"{path}/contacts", None),
        ("GET", f"{path}/contacts/{contact_id}", None),
        ("POST", f"{path}/contacts", {"name": "Eve", "email": "eve@b.example"}),
    ):
        problem(api.request(method, url, json=body, auth=auth_b), 404, code="not-found")
    # A stale If-Match on another tenant's customer is still a 404, never a 412.
    problem(
        api.request("PUT", path, json=customer_body(), auth=auth_b, headers={"If-Match": '"9"'}),
        404,
    )
    for url in (f"/customers/{uuid.uuid4()}", f"/customers/{uuid.uuid4()}/contacts"):
        problem(api.request("GET", url, auth=auth_b), 404)
    assert api.request("GET", "/customers", auth=auth_b).json()["totalCount"] == 0
    after = api.request("GET", path, auth=admin_of(api, tenant_a)).json()
    assert after["name"] == customer["name"]
    assert after["contactCount"] == 1


def test_platform_admin_acts_in_a_named_tenant(sqlite_api: Api) -> None:
    api = sqlite_api
    tenant_id = api.provision()["tenantId"]
    root = api.as_("platform-admin", sub="root")
    problem(api.request("POST", "/customers", json=customer_body(), auth=root), 403)
    created = api.request(
        "POST", "/customers", params={"tenantId": tenant_id}, json=customer_body(), auth=root
    )
    assert created.status_code == 201, created.text
    listed = api.request("GET", "/customers", auth=api.as_("auditor", tenant=tenant_id))
    assert [c["customerId"] for c in listed.json()["customers"]] == [created.json()["customerId"]]


def test_suspended_tenant_users_cannot_write_but_can_read(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    customer = create(api, tenant_id)
    path = f"/customers/{customer['customerId']}"
    suspended = api.request("POST", f"/tenants/{tenant_id}/suspend", auth=api.as_("platform-admin"))
    assert suspended.status_code == 200, suspended.text
    auth = admin_of(api, tenant_id)

    for method, url, body in (
        ("POST", "/customers", customer_body()),
        ("PUT", path, customer_body()),
        ("POST", f"{path}/contacts", {"name": "Eve", "email": "eve@acme.example"}),
    ):
        problem(api.request(method, url, json=body, auth=auth), 403, code="tenant-not-active")
    assert api.request("GET", path, auth=auth).json() == customer
    assert api.request("GET", "/customers", auth=auth).json()["totalCount"] == 1

    reactivated = api.request(
        "POST", f"/tenants/{tenant_id}/reactivate", auth=api.as_("platform-admin")
    )
    assert reactivated.status_code == 200, reactivated.text
    assert api.request("PUT", path, json=customer_body(), auth=auth).status_code == 200


# -- audit, read models, and the helper other use cases use ------------------------------------


def test_audit_trail_records_customer_events_with_actor_and_request(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    alice = api.as_("customer-admin", tenant=tenant_id, sub="alice")
    created = api.request(
        "POST", "/customers", json=FULL, auth=alice, headers={"X-Request-Id": "req-cust-1"}
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["customerId"]
    path = f"/customers/{customer_id}"
    updated = api.request(
        "PUT",
        path,
        json={**FULL, "currency": "EUR"},
        auth=alice,
        headers={"X-Request-Id": "req-cust-2"},
    )
    assert updated.status_code == 200, updated.text
    added = api.request(
        "POST",
        f"{path}/contacts",
        json={"name": "Ada", "email": "ada@acme.example"},
        auth=alice,
        headers={"X-Request-Id": "req-cust-3"},
    )
    assert added.status_code == 201, added.text

    response = api.request(
        "GET",
        "/audit/events",
        params={"aggregateId": customer_id},
        auth=api.as_("auditor", tenant=tenant_id),
    )
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [e["type"] for e in events] == [
        "CustomerCreated",
        "CustomerUpdated",
        "CustomerContactAdded",
    ]
    assert [e["requestId"] for e in events] == ["req-cust-1", "req-cust-2", "req-cust-3"]
    assert {e["actor"] for e in events} == {"user:alice"}
    assert {e["aggregateType"] for e in events} == {"Customer"}
    assert [e["version"] for e in events] == [1, 2, 3]
    assert events[0]["data"]["billingAddress"] == FULL["billingAddress"]
    assert events[1]["data"]["currency"] == "EUR"
    assert events[1]["data"]["changedFields"] == ["currency"]
    assert events[2]["data"]["contactId"] == added.json()["contactId"]
    # Point-in-time state is the resource's own representation at that version.
    auditor = api.as_("auditor", tenant=tenant_id)
    for version, expected in (
        (1, created.json()),
        (3, api.request("GET", path, auth=alice).json()),
    ):
        state = api.request(
            "GET", f"/audit/streams/{customer_id}/state", params={"version": version}, auth=auditor
        )
        assert state.status_code == 200, state.text
        assert state.json()["aggregateType"] == "Customer"
        assert state.json()["state"] == expected
    # Name claims are bookkeeping, not audit events.
    everything = api.request(
        "GET",
        "/audit/events",
        params={"type": "UniqueKeyCreated"},
        auth=api.as_("auditor", tenant=tenant_id),
    )
    assert everything.json()["totalCount"] == 0


def test_replaying_the_log_rebuilds_the_same_customer_tables(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = admin_of(api, tenant_id)
    for n in range(3):
        customer = create(api, tenant_id, **{**FULL, "name": f"Replayed {n}"})
        add_contact(api, tenant_id, customer["customerId"])
        api.request(
            "PUT",
            f"/customers/{customer['customerId']}",
            json={"name": f"Renamed {n}"},
            auth=auth,
        )

    def tables() -> list[list[tuple[Any, ...]]]:
        db = api.services.db
        return [
            db.query(
                "SELECT tenant_id, customer_id, seq, search, version, doc FROM rm_customers"
                " ORDER BY seq"
            ),
            db.query(
                "SELECT tenant_id, customer_id, contact_id, seq, version, doc"
                " FROM rm_customer_contacts ORDER BY seq"
            ),
        ]

    live = tables()
    assert len(live[0]) == 3
    assert len(live[1]) == 3
    api.services.projections.replay()
    assert tables() == live


def test_require_customer_answers_400_for_unknown_or_foreign_ids(api: Api) -> None:
    tenant_a = api.provision()["tenantId"]
    tenant_b = api.provision()["tenantId"]
    customer_id = uuid.UUID(create(api, tenant_a, name="Known")["customerId"])
    log = api.services.log

    found = require_customer(log, uuid.UUID(tenant_a), customer_id)
    assert found.id == customer_id
    assert found.name == "Known"
    for tenant, wanted in ((tenant_b, customer_id), (tenant_a, uuid.uuid4())):
        with pytest.raises(InvalidRequest) as caught:
            require_customer(log, uuid.UUID(tenant), wanted)
        assert caught.value.field == "customerId"
    with pytest.raises(InvalidRequest) as caught:
        require_customer(log, uuid.UUID(tenant_b), customer_id, field="lines[0].customerId")
    assert caught.value.field == "lines[0].customerId"


# -- natural keys under real concurrency ------------------------------------------------------

RACERS = 6


def race(make: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    barrier = threading.Barrier(RACERS)
    wins: list[Any] = []
    losses: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            wins.append(make(i))
        except BaseException as error:
            losses.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return wins, losses


def admin_context(tenant_id: uuid.UUID) -> Context:
    roles = ("customer-admin",)
    principal = Principal(
        subject="racer", tenant_id=tenant_id, roles=roles, permissions=permissions_for(roles)
    )
    return Context(principal=principal, request_id="race", tenant_id=tenant_id)


def racers(api: Api, make_services: Callable[[str], Services]) -> list[Services]:
    # One set of connections per racer, like separate server processes.
    url = api.services.settings.database_url
    return [make_services(url) for _ in range(RACERS)]


def test_simultaneous_creates_with_one_name_give_one_winner(
    api: Api, make_services: Callable[[str], Services]
) -> None:
    tenant_id = uuid.UUID(api.provision()["tenantId"])
    services = racers(api, make_services)
    ctx = admin_context(tenant_id)
    wins, losses = race(
        lambda i: (
            services[i]
            .get(CustomerCommands)
            .create(ctx, CreateCustomer(name="Contested Ltd" if i % 2 else " CONTESTED LTD "))
        )
    )
    assert len(wins) == 1, losses
    assert all(isinstance(e, KeyAlreadyClaimed) and e.field == "name" for e in losses), losses
    created = {
        r.event.originator_id
        for r in api.services.log.read(0, 10_000)
        if isinstance(r.event, Customer.Created)
    }
    assert created == {wins[0].id}


def test_simultaneous_contacts_with_one_email_give_one_winner(
    api: Api, make_services: Callable[[str], Services]
) -> None:
    tenant_id = api.provision()["tenantId"]
    customer_id = uuid.UUID(create(api, tenant_id)["customerId"])
    services = racers(api, make_services)
    ctx = admin_context(uuid.UUID(tenant_id))
    wins, losses = race(
        lambda i: (
            services[i]
            .get(CustomerCommands)
            .add_contact(
                ctx,
                customer_id,
                AddContact(name=f"Racer {i}", email="same@x.co" if i % 2 else " SAME@x.co "),
            )
        )
    )
    assert len(wins) == 1, losses
    assert isinstance(wins[0], ContactWritten)
    assert all(isinstance(e, KeyAlreadyClaimed) and e.field == "email" for e in losses), losses
    customer = api.services.log.load(Customer, customer_id)
    assert customer is not None
    assert [c.contact_id for c in customer.contacts] == [wins[0].contact_id]
