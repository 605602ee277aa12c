"""Errors of the application layer: who may do what, what exists, and write conflicts.

Together with domain.errors these are everything the HTTP layer turns into problem+json.
"""

from __future__ import annotations


class ApplicationError(Exception):
    code = "application-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAuthenticated(ApplicationError):
    """No credentials, or credentials that do not check out (401)."""

    code = "unauthenticated"


class Forbidden(ApplicationError):
    """Authenticated, but this caller may not do this (403)."""

    code = "forbidden"


class NotFound(ApplicationError):
    """No such resource, or it belongs to another tenant: the two are never told apart (404)."""

    code = "not-found"

    def __init__(self, resource: str, resource_id: object) -> None:
        super().__init__(f"{resource} {resource_id} was not found")
        self.resource = resource


class ConcurrentWrite(ApplicationError):
    """Somebody else changed the same thing first; read it again and retry (409)."""

    code = "concurrent-write"


class PreconditionFailed(ApplicationError):
    """The caller's If-Match version is not the current version (412)."""

    code = "precondition-failed"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"the resource is at version {actual}, not {expected}")
        self.expected = expected
        self.actual = actual


class InvalidRequest(ApplicationError):
    """Input that is well-formed JSON but refers to something unusable (400)."""

    code = "invalid-request"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.field_message = message


class ReadModelsBehind(ApplicationError):
    """The command was recorded, but the read models could not be brought up to it (503).

    Never a reason to retry the write: `position` says where it landed in the log."""

    code = "read-models-behind"

    def __init__(self, position: int) -> None:
        super().__init__(
            f"the change was recorded at log position {position}, but the read models are"
            " behind; read it again shortly (send X-Log-Position to wait for it)"
        )
        self.position = position


class LimitReached(ApplicationError):
    """A tenant has as many of something as it may have (409); remove one to add another."""

    code = "limit-reached"
