"""The exceptions every layer raises; the API renders each of them as problem+json in one place."""

from __future__ import annotations


class LeitstandError(Exception):
    """Base of every error Leitstand raises on purpose."""

    status = 500
    code = "internal_error"


class InputError(ValueError, LeitstandError):
    """The caller sent something invalid; the message says what and where."""

    status = 422
    code = "invalid_input"


class PayloadTooLarge(InputError):
    """A request body exceeds the documented size limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(InputError):
    """A request body has a content type the endpoint does not take."""

    status = 415
    code = "unsupported_media_type"


class NotFound(LookupError, LeitstandError):
    """The object does not exist, or the caller may not know that it does."""

    status = 404
    code = "not_found"


class Unauthenticated(LeitstandError):
    """No valid credentials came with the request."""

    status = 401
    code = "unauthenticated"


class Conflict(LeitstandError):
    """The thing to create exists already (a user name, a tenant id)."""

    status = 409
    code = "conflict"


class Overloaded(LeitstandError):
    """The ingest queue is full; the caller should retry after `retry_after_s`."""

    status = 429
    code = "overloaded"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimited(Overloaded):
    """A per-tenant, per-user or per-address rate limit or quota is used up."""

    code = "rate_limited"


class NotReady(LeitstandError):
    """A component the request needs is not running."""

    status = 503
    code = "not_ready"


class Forbidden(PermissionError, LeitstandError):
    """The caller is known but its role does not allow this operation."""

    status = 403
    code = "forbidden"
