"""Request bodies: pydantic's validation errors become the engine's own errors."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from engine.api.body import describe_error, query_dict, validation_error
from engine.errors import InvalidInput, MalformedRequest


class Line(BaseModel):
    sku: str
    qty: int = Field(ge=1)


class Order(BaseModel):
    order_id: str
    lines: list[Line]


def error_for(raw: bytes) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        Order.model_validate_json(raw)
    return info.value


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"order_id": "o",', b"\xff\xfe"])
def test_body_that_is_not_json_is_a_malformed_request(raw: bytes) -> None:
    error = validation_error(error_for(raw))
    assert isinstance(error, MalformedRequest)
    assert error.status == 400


def test_json_of_the_wrong_shape_is_invalid_input_with_each_problem_located() -> None:
    error = validation_error(error_for(b'{"lines": [{"sku": "a", "qty": 0}, {"qty": 1}]}'))
    assert isinstance(error, InvalidInput)
    assert error.status == 422
    assert error.details is not None
    assert [d["loc"] for d in error.details] == ["order_id", "lines.0.qty", "lines.1.sku"]
    assert all(d["msg"] for d in error.details)
    assert error.message.startswith("order_id: Field required; lines.0.qty: ")


def test_json_that_is_not_an_object_is_located_at_the_body() -> None:
    error = validation_error(error_for(b"[1, 2]"))
    assert isinstance(error, InvalidInput)
    assert error.details is not None
    assert error.details[0]["loc"] == "body"


def test_message_names_at_most_three_problems_and_details_at_most_twenty() -> None:
    lines = ",".join('{"qty": 0}' for _ in range(15))
    error = validation_error(error_for(f'{{"lines": [{lines}]}}'.encode()))
    assert error.details is not None
    assert len(error.details) == 20
    assert error.message.count(": ") == 3


def test_details_do_not_echo_the_input() -> None:
    error = validation_error(
        error_for(b'{"order_id": "o", "lines": [{"sku": "a", "qty": "secret-123"}]}')
    )
    assert "secret-123" not in str(error.details)
    assert "secret-123" not in error.message


def test_describe_error_is_the_one_line_message() -> None:
    exc = error_for(b'{"order_id": "o"}')
    assert describe_error(exc) == "lines: Field required"


QUERY_TEXT = st.text(alphabet="ab=&;_-.%+2F0 ", max_size=30)


@given(QUERY_TEXT)
def test_query_dicts_equal_parse_qsl_last_value_wins(raw: str) -> None:
    assert query_dict(raw) == dict(parse_qsl(raw, keep_blank_values=True))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("visitor_id=v1&n=10", {"visitor_id": "v1", "n": "10"}),
        ("n=1&n=2", {"n": "2"}),
        ("a&&b=", {"a": "", "b": ""}),
        ("x=a%2Cb+c", {"x": "a,b c"}),
        ("", {}),
    ],
)
def test_query_dict_examples(raw: str, expected: dict[str, str]) -> None:
    assert query_dict(raw) == expected
