"""The WebDAV `If` header (RFC 4918 section 10.4): parsing and evaluation.

    If: (<opaquelocktoken:a> ["etag"]) (Not <DAV:no-lock>)
    If: <http://host/path> (<opaquelocktoken:a>)

The header is true when any list is true; a list is true when all its conditions are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ecrin.core.errors import BadRequest


@dataclass(frozen=True, slots=True)
class Condition:
    negated: bool
    token: str | None = None  # a state token (lock token URI)
    etag: str | None = None  # an entity tag, with its quotes


@dataclass(frozen=True, slots=True)
class ConditionList:
    resource: str | None  # the tagged URL, or None for the request URL
    conditions: tuple[Condition, ...]


def parse_if_header(header: str) -> list[ConditionList]:
    lists: list[ConditionList] = []
    resource: str | None = None
    position = 0
    text = header.strip()
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        if text[position] == "<":
            end = text.find(">", position)
            if end < 0:
                raise BadRequest("malformed If header: unclosed resource tag")
            resource = text[position + 1 : end]
            position = end + 1
            continue
        if text[position] != "(":
            raise BadRequest("malformed If header")
        position, conditions = _parse_list(text, position + 1)
        lists.append(ConditionList(resource, tuple(conditions)))
    if not lists:
        raise BadRequest("empty If header")
    return lists


def _parse_list(text: str, position: int) -> tuple[int, list[Condition]]:
    conditions: list[Condition] = []
    negated = False
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            raise BadRequest("malformed If header: unclosed list")
        char = text[position]
        if char == ")":
            if not conditions:
                raise BadRequest("malformed If header: empty list")
            return position + 1, conditions
        if text[position : position + 3].lower() == "not":
            negated = True
            position += 3
            continue
        if char == "<":
            end = text.find(">", position)
            if end < 0:
                raise BadRequest("malformed If header: unclosed state token")
            conditions.append(Condition(negated, token=text[position + 1 : end]))
        elif char == "[":
            end = text.find("]", position)
            if end < 0:
                raise BadRequest("malformed If header: unclosed entity tag")
            conditions.append(Condition(negated, etag=text[position + 1 : end]))
        else:
            raise BadRequest("malformed If header")
        negated = False
        position = end + 1


def submitted_tokens(lists: list[ConditionList]) -> set[str]:
    return {c.token for lst in lists for c in lst.conditions if c.token and not c.negated}


@dataclass(frozen=True, slots=True)
class ResourceState:
    etag: str | None  # quoted, or None if the resource does not exist
    lock_tokens: frozenset[str]


async def evaluate(
    lists: list[ConditionList], state_of: Callable[[str | None], Awaitable[ResourceState]]
) -> bool:
    """True if any list holds. `state_of(None)` is the request URL's state."""
    for condition_list in lists:
        state = await state_of(condition_list.resource)
        if all(_holds(c, state) for c in condition_list.conditions):
            return True
    return False


def _holds(condition: Condition, state: ResourceState) -> bool:
    if condition.token is not None:
        result = condition.token in state.lock_tokens
    else:
        result = state.etag is not None and _strip_weak(condition.etag) == state.etag
    return result != condition.negated


def _strip_weak(etag: str | None) -> str | None:
    return etag[2:] if etag and etag.startswith("W/") else etag
