"""Running a parsed query over the audit rows (joins, predicates, grouping, ordering, with Spark's
casts and NULL rules), writing values as the JSON_ARRAY format does, and typing the rows a test
adds to the table."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from bot.sandbox.databricks.sql.syntax import (
    AUDIT_COLUMNS,
    STRUCT_FIELDS,
    Having,
    Join,
    Predicate,
    Query,
    SelectItem,
    SqlError,
    joined_key,
)


def _cast(value: Any, type_name: str, what: str) -> Any:
    """Cast a parameter or literal to a column's type, as Spark's implicit casts do."""
    if value is None:
        return None
    try:
        if type_name == "TIMESTAMP":
            return _parse_timestamp(value)
        if type_name == "DATE":
            return (
                value
                if isinstance(value, date) and not isinstance(value, datetime)
                else date.fromisoformat(str(value).strip()[:10])
            )
        if type_name in ("INT", "LONG"):
            return int(str(value).strip())
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)
    except ValueError:
        raise SqlError(
            "CAST_INVALID_INPUT", f"The value {value!r} of {what} cannot be cast to {type_name}.", "22018"
        ) from None


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _bind(predicate: Predicate, params: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    """Resolve parameters and casts once; return a row test (SQL three-valued logic: NULL never matches)."""
    ref, op = predicate.ref, predicate.op
    values = []
    for operand in predicate.operands:
        name = operand.param
        if name is None:
            values.append(_cast(operand.literal, ref.type_name, "a literal"))
        elif name not in params:
            raise SqlError("UNBOUND_SQL_PARAMETER", f"Found the unbound parameter: {name}.", "42P02")
        else:
            values.append(_cast(params[name], ref.type_name, f"parameter :{name}"))
    if op == "is null":
        return lambda row: ref.value(row) is None
    if op == "is not null":
        return lambda row: ref.value(row) is not None
    if op in ("in", "not in"):
        members = [v for v in values if v is not None]
        has_null = len(members) < len(values)
        if op == "in":
            return lambda row: (v := ref.value(row)) is not None and v in members
        return lambda row: (v := ref.value(row)) is not None and not has_null and v not in members
    compare, operand = _COMPARE[op], values[0]
    return lambda row: (v := ref.value(row)) is not None and operand is not None and compare(v, operand)


def _aggregate(item: SelectItem, rows: list[Mapping[str, Any]]) -> Any:
    if item.kind == "count_star":
        return len(rows)
    values = [item.ref.value(row) for row in rows]
    present = [v for v in values if v is not None]
    if item.kind == "count":
        return len(present)
    if item.kind == "count_distinct":
        return len(set(present))
    if not present:
        return None
    return min(present) if item.kind == "min" else max(present)


def _bind_having(having: Having, params: Mapping[str, Any]) -> Callable[[list[Mapping[str, Any]]], bool]:
    item, operand = having.item, having.operand
    if operand.param is not None and operand.param not in params:
        raise SqlError("UNBOUND_SQL_PARAMETER", f"Found the unbound parameter: {operand.param}.", "42P02")
    raw = params[operand.param] if operand.param is not None else operand.literal
    expected, compare = _cast(raw, item.type_name, "HAVING"), _COMPARE[having.op]
    return lambda members: (
        (v := _aggregate(item, members)) is not None and expected is not None and compare(v, expected)
    )


def _join(join: Join, rows: list[Mapping[str, Any]], params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Each audit row with the sub-query row(s) whose `join.inner` equals its `join.outer` (NULL
    never matches); a LEFT join keeps unmatched rows with the sub-query's columns NULL."""
    inner = run_query(join.query, rows, params)
    position = next(i for i, item in enumerate(join.query.items) if item.output_name == join.inner)
    names = [item.output_name for item in join.query.items]
    by_key: dict[Any, list[dict[str, Any]]] = {}
    for values in inner:
        if values[position] is not None:
            by_key.setdefault(values[position], []).append(dict(zip(names, values, strict=True)))
    key, joined = joined_key(join.alias), []
    for row in rows:
        matches = by_key.get(join.outer.value(row), []) if join.outer.value(row) is not None else []
        if not matches and join.left:
            matches = [None]
        joined.extend({**row, key: match} for match in matches)
    return joined


def run_query(query: Query, rows: Iterable[Mapping[str, Any]], params: Mapping[str, Any]) -> list[list[Any]]:
    """Evaluate `query` over `rows`; returns typed values (render them with `render_value`)."""
    rows = list(rows)
    if query.join is not None:
        rows = _join(query.join, rows, params)
    tests = [_bind(p, params) for p in query.predicates]
    having = [_bind_having(h, params) for h in query.having]
    matched = [row for row in rows if all(test(row) for test in tests)]
    if not query.aggregates:
        result = [[item.ref.value(row) for item in query.items] for row in matched]
    else:
        groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
        for row in matched:
            groups.setdefault(tuple(ref.value(row) for ref in query.group_by), []).append(row)
        if not query.group_by:
            groups = {(): matched}
        result = []
        for key, members in groups.items():
            if not all(test(members) for test in having):
                continue
            by_ref = dict(zip(query.group_by, key, strict=True))
            result.append(
                [
                    by_ref[item.ref] if item.kind == "column" else _aggregate(item, members)
                    for item in query.items
                ]
            )
    for index, descending in reversed(query.order_by):  # stable sorts, last key first
        present = [r for r in result if r[index] is not None]
        present.sort(key=lambda r: r[index], reverse=descending)
        missing = [r for r in result if r[index] is None]
        # Spark's defaults: ASC NULLS FIRST, DESC NULLS LAST
        result = present + missing if descending else missing + present
    return result[: query.limit] if query.limit is not None else result


def render_value(value: Any, type_name: str) -> str | None:
    """How the JSON_ARRAY format writes a value: a string, or null."""
    if value is None:
        return None
    if type_name == "TIMESTAMP":
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if type_name == "DATE":
        return value.isoformat()
    if type_name in ("MAP", "STRUCT"):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def normalise_audit_row(row: Mapping[str, Any], *, workspace_id: str, account_id: str) -> dict[str, Any]:
    """Turn a builder's audit row into typed column values; names what is wrong if anything is."""
    result: dict[str, Any] = {name: None for name in AUDIT_COLUMNS}
    for name, value in row.items():
        if "." in name:  # "user_identity.email", "response.statusCode", "request_params.tokenId"
            column, key = name.split(".", 1)
            if column not in ("user_identity", "response", "identity_metadata", "request_params"):
                raise ValueError(f"unknown audit column {name!r}")
            result[column] = {**(result[column] or {}), key: value}
        elif name in AUDIT_COLUMNS:
            result[name] = dict(value) if isinstance(value, Mapping) else value
        else:
            raise ValueError(f"unknown audit column {name!r}; known: {', '.join(AUDIT_COLUMNS)}")
    if result["event_time"] is None:
        raise ValueError("an audit row needs event_time")
    result["event_time"] = _parse_timestamp(result["event_time"])
    result["event_date"] = _cast(result["event_date"] or result["event_time"].date(), "DATE", "event_date")
    for column, fields in STRUCT_FIELDS.items():
        if result[column] is not None:
            unknown = set(result[column]) - set(fields)
            if unknown:
                raise ValueError(f"unknown fields {sorted(unknown)} in {column}")
            given = result[column]
            result[column] = {f: _cast(given.get(f), kind, f"{column}.{f}") for f, kind in fields.items()}
    if result["request_params"] is not None:
        params = result["request_params"].items()
        result["request_params"] = {str(k): None if v is None else str(v) for k, v in params}
    for name, kind in AUDIT_COLUMNS.items():
        if kind == "STRING" and result[name] is not None:
            result[name] = str(result[name])
    result["workspace_id"] = result["workspace_id"] or workspace_id
    result["account_id"] = result["account_id"] or account_id
    result["version"] = result["version"] or "2.0"
    result["audit_level"] = result["audit_level"] or "WORKSPACE_LEVEL"
    result["event_id"] = result["event_id"] or secrets.token_hex(16)
    return result
