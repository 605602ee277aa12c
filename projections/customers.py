"""The customers read model: each customer's representation, searchable by name, and its
contacts.

`evolve` is the one definition of what a customer looks like to clients; the projection stores
its result and the audit trail's point-in-time state uses it too. `contact` does the same for a
contact.

Contacts have a table of their own rather than a list inside the customer's document: they are
listed and paged on their own (`GET /customers/{id}/contacts`) and fetched one by one, the
customer's representation shows only how many there are (so it, and the audit trail's state of
a customer, stay the same size however many contacts it has), and adding one inserts a row
instead of rewriting a document of up to 100 contacts.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from application.customers import CustomerFilter
from application.event_log import RecordedEvent
from application.ports import SqlCursor, SqlDatabase
from application.queries import Document, Page
from domain.customer import BillingAddress, Customer
from projections.formats import from_json, instant, to_json

State = dict[str, Any]


def _address(address: BillingAddress | None) -> dict[str, Any] | None:
    if address is None:
        return None
    return {
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "postalCode": address.postal_code,
        "country": address.country,
    }


def _details(event: Customer.Created | Customer.Updated) -> dict[str, Any]:
    return {
        "name": event.name,
        "email": event.email,
        "phoneNumber": event.phone_number,
        "billingAddress": _address(event.billing_address),
        "currency": event.currency,
    }


def evolve(state: State | None, event: Any) -> State:
    """The customer's client-facing representation after `event`."""
    if isinstance(event, Customer.Created):
        return {
            "customerId": str(event.originator_id),
            **_details(event),
            "status": "active",
            "contactCount": 0,
            "createdAt": instant(event.timestamp),
            "updatedAt": instant(event.timestamp),
        }
    assert state is not None, "a customer's first event creates it"
    if isinstance(event, Customer.Updated):
        state.update(_details(event))
    elif isinstance(event, Customer.ContactAdded):
        state["contactCount"] += 1
    state["updatedAt"] = instant(event.timestamp)
    return state


def contact(event: Customer.ContactAdded) -> State:
    """A contact's client-facing representation."""
    return {
        "contactId": str(event.contact_id),
        "name": event.name,
        "email": event.email,
        "phoneNumber": event.phone_number,
        "role": event.role,
        "createdAt": instant(event.timestamp),
    }


def _like(text: str) -> str:
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class CustomersProjection:
    name = "customers"
    tables = ("rm_customers", "rm_customer_contacts")
    ddl = (
        # `search` is the casefolded name: LIKE is case-sensitive on PostgreSQL, not on SQLite.
        "CREATE TABLE IF NOT EXISTS rm_customers ("
        " tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, seq BIGINT NOT NULL,"
        " search TEXT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, customer_id))",
        "CREATE INDEX IF NOT EXISTS rm_customers_list ON rm_customers (tenant_id, seq)",
        "CREATE TABLE IF NOT EXISTS rm_customer_contacts ("
        " tenant_id TEXT NOT NULL, customer_id TEXT NOT NULL, contact_id TEXT NOT NULL,"
        " seq BIGINT NOT NULL, version INTEGER NOT NULL, doc TEXT NOT NULL,"
        " PRIMARY KEY (tenant_id, customer_id, contact_id))",
        "CREATE INDEX IF NOT EXISTS rm_customer_contacts_list"
        " ON rm_customer_contacts (tenant_id, customer_id, seq)",
    )

    def apply(self, cur: SqlCursor, recorded: RecordedEvent) -> None:
        event = recorded.event
        if not isinstance(event, Customer.Event):
            return
        tenant_id, customer_id = str(event.tenant_id), str(event.originator_id)
        if isinstance(event, Customer.Created):
            doc = evolve(None, event)
            cur.execute(
                "INSERT INTO rm_customers (tenant_id, customer_id, seq, search, version, doc)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    tenant_id,
                    customer_id,
                    recorded.position,
                    doc["name"].casefold(),
                    event.originator_version,
                    to_json(doc),
                ),
            )
            return
        cur.execute(
            "SELECT doc FROM rm_customers WHERE tenant_id = ? AND customer_id = ?",
            (tenant_id, customer_id),
        )
        row = cur.fetchone()
        assert row is not None, f"customer {customer_id} has events but no row"
        doc = evolve(from_json(row[0]), event)
        cur.execute(
            "UPDATE rm_customers SET search = ?, version = ?, doc = ?"
            " WHERE tenant_id = ? AND customer_id = ?",
            (
                doc["name"].casefold(),
                event.originator_version,
                to_json(doc),
                tenant_id,
                customer_id,
            ),
        )
        if isinstance(event, Customer.ContactAdded):
            cur.execute(
                "INSERT INTO rm_customer_contacts"
                " (tenant_id, customer_id, contact_id, seq, version, doc)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    tenant_id,
                    customer_id,
                    str(event.contact_id),
                    recorded.position,
                    event.originator_version,
                    to_json(contact(event)),
                ),
            )


class CustomersView:
    """Reads of the customers read model (implements application.customers.CustomerReadModel)."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    def get(self, tenant_id: UUID, customer_id: UUID) -> Document | None:
        rows = self._db.query(
            "SELECT doc, version FROM rm_customers WHERE tenant_id = ? AND customer_id = ?",
            (str(tenant_id), str(customer_id)),
        )
        if not rows:
            return None
        return Document(doc=msgspec.Raw(rows[0][0].encode()), version=rows[0][1])

    def list(self, tenant_id: UUID, where: CustomerFilter, *, limit: int, after: int) -> Page:
        conditions, params = ["tenant_id = ?"], [str(tenant_id)]
        if where.q:
            conditions.append("search LIKE ? ESCAPE '\\'")
            params.append(_like(where.q))
        return self._page("rm_customers", " AND ".join(conditions), params, limit, after)

    def contacts(self, tenant_id: UUID, customer_id: UUID, *, limit: int, after: int) -> Page:
        return self._page(
            "rm_customer_contacts",
            "tenant_id = ? AND customer_id = ?",
            [str(tenant_id), str(customer_id)],
            limit,
            after,
        )

    def contact(self, tenant_id: UUID, customer_id: UUID, contact_id: UUID) -> Document | None:
        rows = self._db.query(
            "SELECT doc, version FROM rm_customer_contacts"
            " WHERE tenant_id = ? AND customer_id = ? AND contact_id = ?",
            (str(tenant_id), str(customer_id), str(contact_id)),
        )
        if not rows:
            return None
        return Document(doc=msgspec.Raw(rows[0][0].encode()), version=rows[0][1])

    def _page(self, table: str, condition: str, params: list[str], limit: int, after: int) -> Page:
        total = self._db.query(f"SELECT COUNT(*) FROM {table} WHERE {condition}", params)[0][0]
        rows = self._db.query(
            f"SELECT seq, doc FROM {table} WHERE {condition} AND seq > ? ORDER BY seq LIMIT ?",
            (*params, after, limit + 1),
        )
        items = [msgspec.Raw(doc.encode()) for _, doc in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, total=total, next_after=rows[limit - 1][0] if more else None)
