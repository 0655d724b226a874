"""Targeting rules: a small JSON condition language, compiled once, never eval'd.

COND is `{"all": [COND, ...]}`, `{"any": [COND, ...]}`, `{"not": COND}` or a leaf
`{"attr": ATTR, "op": OP, "value": ...}` with ATTR one of `context.<key>`,
`features.<name>` (a name from models.features) or `segments`, and OP one of
eq, ne, in, not_in, gt, gte, lt, lte, exists, contains.

Semantics: a feature the visitor lacks reads as its schema default (so
`features.page_views lt 1` matches a new visitor), except for `exists`, which asks
whether it is stored. A missing context key reads as absent: only `ne`, `not_in`
and `exists: false` match it. `segments` is the visitor's set of segment names:
`contains` a name, `in` / `not_in` a list (any overlap), `exists` (non-empty).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, get_args

from engine.errors import InvalidInput
from models.features import default_of, feature_spec

Op = Literal["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "contains"]
OPS: tuple[str, ...] = get_args(Op)
MAX_DEPTH = 8
MAX_LIST = 1000
CONTEXT_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

Scalar = str | int | float | bool


class Facts(NamedTuple):
    """What a rule can look at for one visitor and request (built twice per decide: a
    NamedTuple builds in half the time of a frozen dataclass)."""

    context: Mapping[str, Any]
    features: Mapping[str, Any]
    segments: frozenset[str] = frozenset()


Predicate = Callable[[Facts], bool]
_ABSENT = object()
_ORDER = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}


def compile_condition(cond: Any, path: str = "when", *, allow_segments: bool = True) -> Predicate:
    """A predicate for `cond`; `InvalidInput` naming the JSON path of the first problem.

    `allow_segments=False` refuses `segments` leaves (segment definitions use it, so
    one segment never depends on another).
    """
    return _compile(cond, path, 0, allow_segments)


def _compile(cond: Any, path: str, depth: int, allow_segments: bool) -> Predicate:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"{path}: conditions nest deeper than {MAX_DEPTH}")
    if not isinstance(cond, dict) or not cond:
        raise InvalidInput(f"{path}: a condition must be a non-empty object")
    if "attr" in cond:
        return _compile_leaf(cond, path, allow_segments)
    if len(cond) != 1:
        raise InvalidInput(f"{path}: use exactly one of all, any, not, or a leaf with attr")
    ((kind, inner),) = cond.items()
    if kind == "not":
        pred = _compile(inner, f"{path}.not", depth + 1, allow_segments)
        return lambda facts: not pred(facts)
    if kind in ("all", "any"):
        if not isinstance(inner, list) or not inner:
            raise InvalidInput(f"{path}.{kind}: must be a non-empty list of conditions")
        preds = tuple(
            _compile(c, f"{path}.{kind}[{i}]", depth + 1, allow_segments)
            for i, c in enumerate(inner)
        )
        if kind == "all":
            return lambda facts: all(p(facts) for p in preds)
        return lambda facts: any(p(facts) for p in preds)
    raise InvalidInput(f"{path}: unknown condition {kind!r} (all, any, not, or attr/op/value)")


def _compile_leaf(cond: dict[str, Any], path: str, allow_segments: bool) -> Predicate:
    extra = set(cond) - {"attr", "op", "value"}
    if extra:
        raise InvalidInput(f"{path}: unknown fields {sorted(extra)}")
    attr, op = cond.get("attr"), cond.get("op")
    if op not in OPS:
        raise InvalidInput(f"{path}.op: {op!r} is not one of {', '.join(OPS)}")
    if not isinstance(attr, str):
        raise InvalidInput(f"{path}.attr: must be a string")
    value = cond.get("value", True if op == "exists" else _ABSENT)
    if value is _ABSENT:
        raise InvalidInput(f"{path}.value: required for op {op!r}")
    _check_value(op, value, f"{path}.value")
    if attr == "segments":
        if not allow_segments:
            raise InvalidInput(f"{path}.attr: a segment cannot be defined by other segments")
        return _segments_predicate(op, value, path)
    source, dot, name = attr.partition(".")
    if source == "context" and dot and CONTEXT_KEY.match(name):
        return _leaf(lambda facts: facts.context.get(name, _ABSENT), op, value)
    if source == "features" and dot:
        if feature_spec(name) is None:
            raise InvalidInput(f"{path}.attr: unknown feature {name!r}")
        default = default_of(name)
        if op == "exists":
            return lambda facts: (name in facts.features) == value
        return _leaf(lambda facts: facts.features.get(name, default), op, value)
    raise InvalidInput(f"{path}.attr: {attr!r} is not context.<key>, features.<name> or segments")


def _check_value(op: str, value: Any, path: str) -> None:
    if op in ("in", "not_in"):
        if not isinstance(value, list) or len(value) > MAX_LIST:
            raise InvalidInput(f"{path}: op {op!r} needs a list of at most {MAX_LIST} values")
        if not all(isinstance(v, Scalar) for v in value):
            raise InvalidInput(f"{path}: list values must be strings, numbers or booleans")
    elif op in _ORDER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{path}: op {op!r} needs a number")
    elif op == "exists":
        if not isinstance(value, bool):
            raise InvalidInput(f"{path}: op 'exists' takes true or false")
    elif not isinstance(value, Scalar):
        raise InvalidInput(f"{path}: op {op!r} needs a string, number or boolean")


def _leaf(get: Callable[[Facts], Any], op: str, value: Any) -> Predicate:
    if op in ("eq", "ne"):
        expected = _json_key(value)
        if op == "eq":
            return lambda facts: _json_key(get(facts)) == expected
        return lambda facts: _json_key(get(facts)) != expected
    if op in ("in", "not_in"):
        members = frozenset(_json_key(v) for v in value)
        if op == "in":
            return lambda facts: _json_key(get(facts)) in members
        return lambda facts: _json_key(get(facts)) not in members
    if op in _ORDER:
        compare = _ORDER[op]

        def ordered(facts: Facts) -> bool:
            actual = get(facts)
            return (
                isinstance(actual, int | float)
                and not isinstance(actual, bool)
                and compare(actual, value)
            )

        return ordered
    if op == "exists":
        return lambda facts: (get(facts) is not _ABSENT) == value

    # contains: substring of a string, or member of a list
    def contains(facts: Facts) -> bool:
        actual = get(facts)
        if isinstance(actual, str):
            return isinstance(value, str) and value in actual
        return isinstance(actual, list | tuple | set | frozenset) and value in actual

    return contains


def _json_key(value: Any) -> Any:
    """Equality as JSON means it: true is not 1 (Python says it is), 1 is 1.0."""
    if isinstance(value, bool):
        return (bool, value)
    if isinstance(value, int | float):
        try:
            return (float, float(value))
        except OverflowError:  # an int too large for a float equals no JSON number here
            return (int, value)
    if isinstance(value, str):
        return (str, value)
    return _ABSENT


def _segments_predicate(op: str, value: Any, path: str) -> Predicate:
    if op == "contains":
        if not isinstance(value, str):
            raise InvalidInput(f"{path}.value: segments contains needs a segment name")
        return lambda facts: value in facts.segments
    if op in ("in", "not_in"):
        names = frozenset(value)
        if op == "in":
            return lambda facts: not names.isdisjoint(facts.segments)
        return lambda facts: names.isdisjoint(facts.segments)
    if op == "exists":
        return lambda facts: bool(facts.segments) == value
    raise InvalidInput(f"{path}.op: segments supports contains, in, not_in and exists")
