"""Domain errors: what the model refuses, and why, in words a client can act on.

The HTTP layer maps each class to a status code; nothing here knows about HTTP.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a rule of the model was broken. `code` is a stable machine-readable name."""

    code = "domain-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(DomainError):
    """A value is malformed or out of range (maps to 400). `field` names it in API terms."""

    code = "invalid-value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.field_message = message


class IllegalTransition(DomainError):
    """The aggregate's lifecycle does not allow this command in its current state (409)."""

    code = "illegal-transition"

    def __init__(self, aggregate: str, action: str, state: str) -> None:
        super().__init__(f"cannot {action} a {aggregate} that is {state}")
        self.aggregate = aggregate
        self.action = action
        self.state = state


class TenantNotActive(DomainError):
    """Writes inside a suspended or closed tenant are refused (403)."""

    code = "tenant-not-active"

    def __init__(self, status: str) -> None:
        super().__init__(f"the tenant is {status}: its data cannot be changed")
        self.status = status


class KeyAlreadyClaimed(DomainError):
    """A natural key (tenant name, employee reference, email) is already taken (409)."""

    code = "duplicate"

    def __init__(self, field: str, value: str) -> None:
        super().__init__(f"{field} {value!r} is already in use")
        self.field = field
        self.value = value


class CapacityExceeded(DomainError):
    """A squad cannot take more hours in some week than its weekly capacity (409)."""

    code = "over-capacity"

    def __init__(self, week: str, requested: str, available: str) -> None:
        super().__init__(
            f"the week of {week} would be over capacity: {requested} hours requested,"
            f" {available} available"
        )
        self.week = week
