"""The one exception tree of the engine; `engine.api.errors` maps it to HTTP."""

from __future__ import annotations

from typing import Any


class OmotenashiError(Exception):
    """Base of every error the engine raises on purpose."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[dict[str, Any]] | None = None


class ConfigError(OmotenashiError):
    """The engine cannot start with this configuration."""

    code = "config_error"


class InvalidInput(OmotenashiError):
    """A request that is well-formed JSON but not acceptable."""

    status = 422
    code = "invalid_input"


class NotFound(OmotenashiError):
    status = 404
    code = "not_found"


class Unauthorized(OmotenashiError):
    status = 401
    code = "unauthorized"


class Forbidden(OmotenashiError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(OmotenashiError):
    status = 413
    code = "payload_too_large"


class StoreUnavailable(OmotenashiError):
    """Redis could not be reached or answered with an error."""

    status = 503
    code = "store_unavailable"


class InvalidToken(OmotenashiError):
    """A decision token whose signature or format does not check out."""

    status = 422
    code = "invalid_token"


class MalformedRequest(OmotenashiError):
    """A body that is not JSON at all, or not the right JSON shape."""

    status = 400
    code = "malformed_request"


class DefinitionsNotLoaded(OmotenashiError):
    """No slot definitions are known yet (Redis down since start and no snapshot)."""

    status = 503
    code = "definitions_not_loaded"


class ModelNotLoaded(OmotenashiError):
    """No model of the needed kind is active and loaded on this worker."""

    status = 503
    code = "model_not_loaded"


class Conflict(OmotenashiError):
    status = 409
    code = "conflict"
