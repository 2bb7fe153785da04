"""The one exception tree. Adapters translate it once (DAV, OCS, CLI).

Each error carries the HTTP status it maps to and, where RFC 4918 defines one, the
precondition/postcondition element name to put in the error body.
"""

from __future__ import annotations


class EcrinError(Exception):
    status = 500
    condition: str | None = None

    def __init__(self, message: str = "", *, condition: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        if condition is not None:
            self.condition = condition

    @property
    def message(self) -> str:
        return str(self.args[0])


class BadRequest(EcrinError):
    """The request is malformed."""

    status = 400


class Unauthorized(EcrinError):
    """Authentication is required."""

    status = 401


class Forbidden(EcrinError):
    """This operation is not allowed."""

    status = 403


class NotFound(EcrinError):
    """No such file or folder."""

    status = 404


class MethodNotAllowed(EcrinError):
    """This method is not allowed on this resource."""

    status = 405


class Conflict(EcrinError):
    """The parent folder does not exist or the resource is in a conflicting state."""

    status = 409


class PreconditionFailed(EcrinError):
    """A precondition given in the request headers does not hold."""

    status = 412


class PayloadTooLarge(EcrinError):
    """The request body is too large."""

    status = 413


class UnsupportedMediaType(EcrinError):
    """The request body is of a type this method does not accept."""

    status = 415


class RangeNotSatisfiable(EcrinError):
    """The requested range is outside the file."""

    status = 416


class Locked(EcrinError):
    """The resource is locked."""

    status = 423
    condition = "lock-token-submitted"


class QuotaExceeded(EcrinError):
    """Not enough quota left to store this."""

    status = 507
    condition = "quota-not-exceeded"


class NotImplementedYet(EcrinError):
    """This method is not implemented."""

    status = 501


class Unavailable(EcrinError):
    """A backend is busy or briefly unreachable; the same request may succeed if retried."""

    status = 503


class StorageError(EcrinError):
    """The storage backend failed."""

    status = 500


class KeyUnavailable(StorageError):
    """The encryption key needed for this content is not available."""

    status = 503


class ChecksumMismatch(BadRequest):
    """The content does not match the checksum the client sent."""


class TooManyRequests(EcrinError):
    """Too many attempts: wait before trying again."""

    status = 429
