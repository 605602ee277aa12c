"""Every event that clients may subscribe to declares its API.md webhook name, and no event
invents one."""

from __future__ import annotations

from domain.events import TenantEvent

# API.md, "Webhooks (outbound)": the public event types.
API_EVENT_TYPES = {
    "tenant.created",
    "tenant.updated",
    "tenant.suspended",
    "tenant.reactivated",
    "tenant.closed",
    "person.created",
    "person.updated",
    "person.deactivated",
    "person.reactivated",
    "person.photo.approved",
    "person.unit.assigned",
    "person.unit.removed",
    "customer.created",
    "customer.updated",
    "engagement.created",
    "engagement.updated",
    "engagement.activated",
    "engagement.completed",
    "engagement.cancelled",
    "milestone.completed",
    "task.completed",
    "invoice.created",
    "invoice.issued",
    "invoice.paid",
    "invoice.voided",
    "payment.received",
}


def all_event_classes() -> list[type[TenantEvent]]:
    import domain.customer
    import domain.engagement
    import domain.invoice
    import domain.person
    import domain.squad
    import domain.tenant
    import domain.work

    modules = [
        domain.tenant,
        domain.person,
        domain.customer,
        domain.engagement,
        domain.squad,
        domain.work,
        domain.invoice,
    ]
    found = []
    for module in modules:
        for aggregate in vars(module).values():
            for value in vars(aggregate).values() if isinstance(aggregate, type) else ():
                if isinstance(value, type) and issubclass(value, TenantEvent):
                    found.append(value)
    return found


def test_declared_webhook_names_are_the_api_ones() -> None:
    declared = {cls.webhook for cls in all_event_classes() if cls.webhook}
    assert declared <= API_EVENT_TYPES
    resources = {name.split(".")[0] for name in declared}
    # Every API name of a resource this code models is declared by some event.
    assert {n for n in API_EVENT_TYPES if n.split(".")[0] in resources} <= declared
