"""Every event that clients may subscribe to declares its API.md webhook name, and no event
invents one: the names events declare are exactly domain.webhook.PUBLIC_EVENT_TYPES, the list
endpoints may subscribe to."""

from __future__ import annotations

import importlib
import pkgutil

import domain
import domain.webhook
from domain.events import TenantEvent


def all_event_classes() -> list[type[TenantEvent]]:
    """Every tenant event class of every module of the domain package (new ones included)."""
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    found: list[type[TenantEvent]] = []
    pending = list(TenantEvent.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith("domain.")]


def test_the_scan_sees_every_domain_module() -> None:
    modules = {cls.__module__ for cls in all_event_classes()}
    assert {
        "domain.tenant",
        "domain.person",
        "domain.customer",
        "domain.engagement",
        "domain.work",
        "domain.invoice",
        "domain.webhook",
    } <= modules


def test_declared_webhook_names_are_the_public_event_types() -> None:
    declared = {cls.webhook for cls in all_event_classes() if cls.webhook}
    assert declared == domain.webhook.PUBLIC_EVENT_TYPES


def test_the_test_event_and_the_wildcard_are_not_subscribable_names() -> None:
    assert domain.webhook.TEST_EVENT not in domain.webhook.PUBLIC_EVENT_TYPES
    assert domain.webhook.ALL_EVENTS not in domain.webhook.PUBLIC_EVENT_TYPES
