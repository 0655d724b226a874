"""Request bodies and query strings validated by pydantic, outside FastAPI's dependency
machinery; JSON bodies go through pydantic's Rust JSON parser, straight from bytes.

FastAPI's own body handling decodes with the stdlib `json` and validates in a second
pass; on the decide hot path that was measurable, so routes read the body themselves
and declare its schema for the docs with `json_body`.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from engine.errors import InvalidInput, MalformedRequest

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request) -> bytes:
    """The whole body, taken from the ASGI messages directly (Starlette's `body()`
    iterates an async generator: 2 us more per request on an idle core). Read once: the
    messages are consumed."""
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] != "http.request":  # http.disconnect: the client is gone
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await read_body(request)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


async def read_json_object(request: Request, shape: str) -> dict[str, Any]:
    """A body that must be a JSON object; `shape` says what was expected, for the 400."""
    try:
        body = orjson.loads(await read_body(request))
    except orjson.JSONDecodeError:
        raise MalformedRequest("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise MalformedRequest(shape)
    return body


def validation_error(exc: ValidationError) -> MalformedRequest | InvalidInput:
    """Pydantic's errors as ours: malformed JSON is 400, JSON of the wrong shape 422."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return MalformedRequest("request body is not valid JSON")
    details = [
        {"loc": ".".join(str(p) for p in e["loc"]) or "body", "msg": e["msg"]} for e in errors[:20]
    ]
    error = InvalidInput("; ".join(f"{d['loc']}: {d['msg']}" for d in details[:3]))
    error.details = details
    return error


def parse_query(request: Request, model: type[M]) -> M:
    """Query parameters validated by `model` (a repeated name keeps its last value).

    FastAPI's per-parameter dependency solving cost more than the recommendation itself
    on the hot path; routes declare the parameters for the docs with `query_params`."""
    raw = request.scope["query_string"].decode("latin-1")
    try:
        return model.model_validate(query_dict(raw))
    except ValidationError as exc:
        raise validation_error(exc) from None


def query_dict(raw: str) -> dict[str, str]:
    """A query string as a dict, the last of a repeated name winning (as in
    `dict(request.query_params)`), without Starlette's multi-dict on the hot path.
    Nothing to unescape (the usual `visitor_id=...&n=10`) is split directly, a third
    of `parse_qsl`'s cost; the result is the same."""
    if "%" in raw or "+" in raw:
        return dict(parse_qsl(raw, keep_blank_values=True))
    return dict(pair.partition("=")[::2] for pair in raw.split("&") if pair)


def query_params(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model`'s fields as query parameters."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "description": field.pop("description", ""),
                "schema": field,
            }
            for name, field in schema["properties"].items()
        ]
    }


def describe_error(exc: ValidationError) -> str:
    """One line for a per-item error (event batches report these by index)."""
    return validation_error(exc).message


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` declaring `model` as the JSON request body (see `install_schemas`)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }
