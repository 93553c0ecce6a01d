"""SCIM: `/Me`, `/Users` and `/ServicePrincipals` (get and list, with paging, filters and
attribute projection), as the SDK's iam clients read them."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from bot.sandbox.databricks.errors import ScimError
from bot.sandbox.databricks.state import (
    SCIM_LIST_SCHEMA,
    SCIM_MAX_PAGE,
    DatabricksWorkspace,
    Principal,
    user_scim,
)
from bot.sandbox.server import Request, Response


class ScimApi(DatabricksWorkspace):
    """`/api/2.0/preview/scim/v2/...`."""

    # SCIM ---------------------------------------------------------------------------------------
    def _scim_me(self, request: Request, caller: Principal) -> Response:
        me = copy.deepcopy(caller.scim)
        if caller.kind == "sp":  # /Me answers in the User shape; a service principal's userName is its app id
            me = user_scim(caller.id, caller.name, caller.scim["displayName"], caller.scim["active"])
        return Response(body=me)

    def _scim_get(self, request: Request, kind: str, id: str) -> Response:
        principal = self._principals.get(id)
        if principal is None or principal.kind != kind:
            noun = "User" if kind == "user" else "Service principal"
            raise ScimError(404, f"{noun} {id} not found.")
        attributes, excluded = request.arg("attributes"), request.arg("excludedAttributes")
        return Response(body=_project(principal.scim, attributes, excluded))

    def _scim_list(self, request: Request, kind: str) -> Response:
        start, count = _scim_int(request, "startIndex", 1), _scim_int(request, "count", SCIM_MAX_PAGE)
        start, count = max(start, 1), min(max(count, 0), SCIM_MAX_PAGE)
        test = ScimFilter(request.arg("filter")) if request.arg("filter") else None
        matched = [
            p.scim for p in self._principals.values() if p.kind == kind and (test is None or test(p.scim))
        ]
        page = matched[start - 1 : start - 1 + count]
        body: dict[str, Any] = {
            "schemas": [SCIM_LIST_SCHEMA],
            "totalResults": len(matched),
            "startIndex": start,
            "itemsPerPage": len(page),
        }
        if page:  # Databricks leaves Resources out of an empty page; the SDK stops on that
            attributes, excluded = request.arg("attributes"), request.arg("excludedAttributes")
            body["Resources"] = [_project(resource, attributes, excluded) for resource in page]
        return Response(body=body)


def _scim_int(request: Request, name: str, default: int) -> int:
    value = request.arg(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ScimError(400, f"{name} must be an integer, got {value!r}.", "invalidValue") from None


def _project(resource: Mapping[str, Any], attributes: str | None, excluded: str | None) -> dict[str, Any]:
    """Apply SCIM `attributes` / `excludedAttributes` (top-level names, case-insensitive; id always stays)."""
    result = copy.deepcopy(dict(resource))
    if attributes:
        wanted = {a.split(".")[0].strip().lower() for a in attributes.split(",")} | {"id", "schemas"}
        result = {k: v for k, v in result.items() if k.lower() in wanted}
    if excluded:
        unwanted = {a.split(".")[0].strip().lower() for a in excluded.split(",")} - {"id"}
        result = {k: v for k, v in result.items() if k.lower() not in unwanted}
    return result


_SCIM_TERM = re.compile(
    r"\s*(?P<attr>[A-Za-z][\w.]*)\s+(?P<op>eq|ne|co|sw|ew|pr)\b"
    r'(?:\s+(?P<value>"(?:[^"\\]|\\.)*"|true|false|null|-?\d+))?\s*',
    re.IGNORECASE,
)
_SCIM_JOIN = re.compile(r"(and|or)\s+", re.IGNORECASE)
_CASE_EXACT = {"id", "applicationid", "externalid"}


class ScimFilter:
    """A SCIM filter of `attr op value` terms joined by `and` / `or` (no parentheses, no `not`)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.alternatives: list[list[tuple[str, str, Any]]] = [[]]
        pos = 0
        while True:
            match = _SCIM_TERM.match(text, pos)
            if match is None:
                raise ScimError(
                    400,
                    f"Invalid filter {text!r} near position {pos}: the sandbox understands "
                    "attr eq|ne|co|sw|ew|pr value, joined by and/or.",
                    "invalidFilter",
                )
            value = match.group("value")
            if match.group("op").lower() != "pr" and value is None:
                raise ScimError(
                    400, f"Invalid filter {text!r}: {match.group('op')} needs a value.", "invalidFilter"
                )
            self.alternatives[-1].append(
                (
                    match.group("attr"),
                    match.group("op").lower(),
                    json.loads(value) if value is not None else None,
                )
            )
            pos = match.end()
            if pos == len(text):
                break
            join = _SCIM_JOIN.match(text, pos)
            if join is None:
                raise ScimError(400, f"Invalid filter {text!r} near position {pos}.", "invalidFilter")
            if join.group(1).lower() == "or":
                self.alternatives.append([])
            pos = join.end()

    def __call__(self, resource: Mapping[str, Any]) -> bool:
        return any(all(self._term(resource, *term) for term in terms) for terms in self.alternatives)

    @staticmethod
    def _term(resource: Mapping[str, Any], attr: str, op: str, expected: Any) -> bool:
        values = _scim_values(resource, attr)
        if op == "pr":
            return any(v not in (None, "", []) for v in values)
        exact = attr.lower() in _CASE_EXACT
        return any(_scim_compare(v, op, expected, exact) for v in values)


def _scim_values(resource: Mapping[str, Any], attr: str) -> list[Any]:
    head, _, rest = attr.partition(".")
    key = next((k for k in resource if k.lower() == head.lower()), None)
    if key is None:
        return []
    value = resource[key]
    if isinstance(value, list):  # multi-valued (emails): `emails` means emails.value
        sub = rest or "value"
        return [item.get(sub) for item in value if isinstance(item, dict)]
    return [value]


def _scim_compare(actual: Any, op: str, expected: Any, exact: bool) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        if not exact:
            actual, expected = actual.lower(), expected.lower()
        return {
            "eq": actual == expected,
            "ne": actual != expected,
            "co": expected in actual,
            "sw": actual.startswith(expected),
            "ew": actual.endswith(expected),
        }[op]
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    return False
