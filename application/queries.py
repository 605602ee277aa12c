"""The read side as the application sees it: read-model ports, and the query services that
authorise and tenant-scope every read before it reaches a read model."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Protocol
from uuid import UUID

import msgspec

from application.context import Context
from application.errors import InvalidRequest, NotFound
from application.event_log import EventLog

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
MAX_POSITION = 2**63 - 1  # BIGINT: no store holds a larger position or version


class Page(msgspec.Struct, frozen=True):
    """One page of a list: documents as pre-encoded JSON, the total, and where to go next."""

    items: list[msgspec.Raw]
    total: int
    next_after: int | None  # the sort key of the last item, when more follow


class Document(msgspec.Struct, frozen=True):
    """A resource's representation as stored by its read model, with its version (ETag)."""

    doc: msgspec.Raw
    version: int


class TenantRecord(msgspec.Struct, frozen=True):
    tenant: Document
    subscription: msgspec.Raw
    settings: msgspec.Raw
    provisioned_by: str


class TenantReadModel(Protocol):
    def get(self, tenant_id: UUID) -> TenantRecord | None: ...

    def list(
        self, *, only_tenant: UUID | None, provisioned_by: str | None, limit: int, after: int
    ) -> Page: ...


class PeopleFilter(msgspec.Struct, frozen=True):
    include_inactive: bool = False
    unit: str | None = None
    q: str | None = None


class PeopleReadModel(Protocol):
    def get(self, tenant_id: UUID, person_id: UUID) -> Document | None: ...

    def list(self, tenant_id: UUID, where: PeopleFilter, *, limit: int, after: int) -> Page: ...


class AuditFilter(msgspec.Struct, frozen=True):
    aggregate_id: UUID | None = None
    type: str | None = None
    actor: str | None = None
    from_: str | None = None  # RFC 3339 instants, compared on the stored UTC text
    to: str | None = None


class AuditReadModel(Protocol):
    def list(self, tenant_id: UUID, where: AuditFilter, *, limit: int, after: int) -> Page: ...

    def aggregate_type(self, tenant_id: UUID, aggregate_id: UUID) -> str | None: ...


# -- cursors ------------------------------------------------------------------------------


def encode_cursor(after: int | None) -> str | None:
    """Opaque to clients; today the sort key of the last item they saw."""
    if after is None:
        return None
    return base64.urlsafe_b64encode(f"a:{after}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        after = int(value)
        if kind != "a" or not 0 <= after <= MAX_POSITION:
            raise ValueError(cursor)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise InvalidRequest("cursor", "is not a cursor this API returned") from None
    return after


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


# -- query services -----------------------------------------------------------------------


class TenantQueries:
    def __init__(self, tenants: TenantReadModel) -> None:
        self._tenants = tenants

    def get(self, ctx: Context, tenant_id: UUID) -> TenantRecord:
        ctx.require("tenant:read")
        record = self._tenants.get(tenant_id)
        if record is None or not self._visible(ctx, tenant_id, record.provisioned_by):
            raise NotFound("tenant", tenant_id)
        return record

    def list(self, ctx: Context, *, limit: int, cursor: str | None) -> Page:
        ctx.require("tenant:read")
        principal = ctx.principal
        only = None if principal.tenant_id is None else principal.tenant_id
        by = (
            principal.actor
            if principal.is_partner_admin and not principal.is_platform_admin
            else None
        )
        if principal.tenant_id is None and by is None and not principal.is_platform_admin:
            raise NotFound("tenants", "list")
        return self._tenants.list(
            only_tenant=only,
            provisioned_by=by,
            limit=check_limit(limit),
            after=decode_cursor(cursor),
        )

    @staticmethod
    def _visible(ctx: Context, tenant_id: UUID, provisioned_by: str) -> bool:
        principal = ctx.principal
        return (
            principal.is_platform_admin
            or (principal.is_partner_admin and provisioned_by == principal.actor)
            or principal.tenant_id == tenant_id
        )


class PeopleQueries:
    def __init__(self, people: PeopleReadModel) -> None:
        self._people = people

    def get(self, ctx: Context, person_id: UUID) -> Document:
        ctx.require("person:read")
        document = self._people.get(ctx.require_tenant(), person_id)
        if document is None:
            raise NotFound("person", person_id)
        return document

    def list(self, ctx: Context, where: PeopleFilter, *, limit: int, cursor: str | None) -> Page:
        ctx.require("person:read")
        return self._people.list(
            ctx.require_tenant(), where, limit=check_limit(limit), after=decode_cursor(cursor)
        )


class StateRenderer(Protocol):
    def __call__(self, aggregate_type: str, events: list[Any]) -> dict[str, Any] | None:
        """The resource representation an aggregate had after `events`."""
        ...


class AggregateState(msgspec.Struct, rename="camel", frozen=True):
    aggregate_id: UUID
    aggregate_type: str
    version: int
    state: dict[str, Any]


class AuditQueries:
    def __init__(self, audit: AuditReadModel, log: EventLog, render: StateRenderer) -> None:
        self._audit = audit
        self._log = log
        self._render = render

    def state(self, ctx: Context, aggregate_id: UUID, version: int) -> AggregateState:
        """The aggregate as it was after `version`, from its own events (not a read model)."""
        ctx.require("audit:read")
        aggregate_type = self._audit.aggregate_type(ctx.require_tenant(), aggregate_id)
        if aggregate_type is None:
            raise NotFound("stream", aggregate_id)
        if not 1 <= version <= MAX_POSITION:
            raise InvalidRequest("version", f"must be between 1 and {MAX_POSITION}")
        events = self._log.history(aggregate_id, up_to_version=version)
        state = self._render(aggregate_type, events)
        if len(events) < version or state is None:
            raise NotFound(f"version {version} of stream", aggregate_id)
        return AggregateState(
            aggregate_id=aggregate_id, aggregate_type=aggregate_type, version=version, state=state
        )

    def events(self, ctx: Context, where: AuditFilter, *, limit: int, cursor: str | None) -> Page:
        ctx.require("audit:read")
        return self._audit.list(
            ctx.require_tenant(), where, limit=check_limit(limit), after=decode_cursor(cursor)
        )

    def stream(self, ctx: Context, aggregate_id: UUID, *, limit: int, cursor: str | None) -> Page:
        ctx.require("audit:read")
        page = self._audit.list(
            ctx.require_tenant(),
            AuditFilter(aggregate_id=aggregate_id),
            limit=check_limit(limit),
            after=decode_cursor(cursor),
        )
        if page.total == 0:
            raise NotFound("stream", aggregate_id)
        return page
