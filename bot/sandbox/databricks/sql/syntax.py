"""The audit table's columns and types, and the query tree the parser builds from a statement."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

AUDIT_COLUMNS: dict[str, str] = {
    "account_id": "STRING",
    "workspace_id": "STRING",
    "version": "STRING",
    "event_time": "TIMESTAMP",
    "event_date": "DATE",
    "source_ip_address": "STRING",
    "user_agent": "STRING",
    "session_id": "STRING",
    "user_identity": "STRUCT",
    "service_name": "STRING",
    "action_name": "STRING",
    "request_id": "STRING",
    "request_params": "MAP",
    "response": "STRUCT",
    "audit_level": "STRING",
    "event_id": "STRING",
    "identity_metadata": "STRUCT",
}
STRUCT_FIELDS: dict[str, dict[str, str]] = {
    "user_identity": {"email": "STRING", "subjectName": "STRING"},
    "response": {"statusCode": "INT", "errorMessage": "STRING", "result": "STRING"},
    "identity_metadata": {"run_by": "STRING", "run_as": "STRING", "acting_resource": "STRING"},
}
_TYPE_TEXT = {
    "STRING": "STRING",
    "TIMESTAMP": "TIMESTAMP",
    "DATE": "DATE",
    "INT": "INT",
    "LONG": "BIGINT",
    "MAP": "MAP<STRING, STRING>",
}
_SUBSET = (
    "SELECT columns/count/min/max FROM system.access.audit [alias] [[LEFT] JOIN (sub-query) "
    "alias ON column = alias.column] [WHERE comparisons joined by AND] [GROUP BY] [HAVING] "
    "[ORDER BY] [LIMIT]"
)


class SqlError(Exception):
    """Makes a statement FAILED; `message` follows Databricks' `[ERROR_CLASS] text` style."""

    def __init__(self, error_class: str, message: str, sql_state: str) -> None:
        super().__init__(f"[{error_class}] {message}")
        self.sql_state = sql_state


def unsupported(what: str) -> SqlError:
    message = f"{what} is not supported by the sandbox; it answers only {_SUBSET}."
    return SqlError("UNSUPPORTED_BY_SANDBOX", message, "0A000")


def _type_text(column: str, type_name: str) -> str:
    if type_name == "STRUCT":
        fields = ", ".join(f"{name}: {kind}" for name, kind in STRUCT_FIELDS[column].items())
        return f"STRUCT<{fields}>"
    return _TYPE_TEXT[type_name]


@dataclass(frozen=True)
class ColumnRef:
    """A column of the audit table, or one field of a struct column, or one key of the map column."""

    column: str
    key: str | None = None
    dotted: bool = True  # `map.key` rather than `map['key']` (only changes the output name)

    @property
    def type_name(self) -> str:
        kind = AUDIT_COLUMNS[self.column]
        if self.key is None:
            return kind
        return STRUCT_FIELDS[self.column][self.key] if kind == "STRUCT" else "STRING"

    @property
    def type_text(self) -> str:
        return _type_text(self.column, self.type_name) if self.key is None else _TYPE_TEXT[self.type_name]

    @property
    def output_name(self) -> str:
        """The result column name Spark gives this expression."""
        if self.key is None:
            return self.column
        if AUDIT_COLUMNS[self.column] == "MAP" and not self.dotted:
            return f"{self.column}[{self.key}]"
        return self.key

    def value(self, row: Mapping[str, Any]) -> Any:
        value = row.get(self.column)
        if self.key is None or value is None:
            return value
        return value.get(self.key)


@dataclass(frozen=True)
class JoinedRef:
    """A column of a joined sub-query (`alias.name`), read from the joined row."""

    alias: str
    name: str
    type_name: str
    type_text: str

    @property
    def column(self) -> str:
        return f"{self.alias}.{self.name}"

    @property
    def output_name(self) -> str:
        return self.name

    def value(self, row: Mapping[str, Any]) -> Any:
        joined = row.get(joined_key(self.alias))
        return None if joined is None else joined.get(self.name)


def joined_key(alias: str) -> str:
    return "\0" + alias.lower()  # cannot clash with an audit column


@dataclass(frozen=True)
class Operand:
    param: str | None = None
    literal: Any = None


@dataclass(frozen=True)
class Predicate:
    ref: ColumnRef
    op: str  # = != < <= > >= in, not in, is null, is not null
    operands: tuple[Operand, ...] = ()


@dataclass(frozen=True)
class SelectItem:
    kind: str  # column, count_star, count, count_distinct, min, max
    ref: ColumnRef | JoinedRef | None
    alias: str | None = None

    @property
    def output_name(self) -> str:
        if self.alias:
            return self.alias
        if self.kind == "column":
            return self.ref.output_name
        if self.kind == "count_star":
            return "count(1)"
        if self.kind == "count_distinct":
            return f"count(DISTINCT {self.ref.output_name})"
        return f"{self.kind}({self.ref.output_name})"

    @property
    def counts(self) -> bool:
        return self.kind in ("count", "count_star", "count_distinct")

    @property
    def type_name(self) -> str:
        return "LONG" if self.counts else self.ref.type_name

    @property
    def type_text(self) -> str:
        return _TYPE_TEXT["LONG"] if self.counts else self.ref.type_text


@dataclass(frozen=True)
class Having:
    """`aggregate op value` in HAVING: a test on each group."""

    item: SelectItem
    op: str
    operand: Operand


@dataclass
class Join:
    """`[LEFT] JOIN (sub-query) alias ON audit-column = alias.column`: one equality, as a hash join."""

    left: bool
    alias: str
    query: Query
    outer: ColumnRef
    inner: str  # the sub-query's output column


@dataclass
class Query:
    items: list[SelectItem]
    join: Join | None = None
    predicates: list[Predicate] = field(default_factory=list)
    group_by: list[ColumnRef | JoinedRef] = field(default_factory=list)
    having: list[Having] = field(default_factory=list)
    order_by: list[tuple[int, bool]] = field(default_factory=list)  # (item index, descending)
    limit: int | None = None

    @property
    def aggregates(self) -> bool:
        return bool(self.group_by) or any(item.kind != "column" for item in self.items)


def check_grouping(query: Query) -> None:
    """Spark's rules for a query that groups: HAVING needs grouping, every plain item is grouped."""
    if query.having and not query.aggregates:
        raise SqlError("MISSING_GROUP_BY", "HAVING needs GROUP BY or an aggregate.", "42803")
    if not query.aggregates:
        return
    for ref in query.group_by:
        if ref.type_name in ("MAP", "STRUCT"):
            raise unsupported(f"GROUP BY the {ref.type_name} column `{ref.column}`")
    for item in query.items:
        if item.kind == "column" and item.ref not in query.group_by:
            raise SqlError(
                "MISSING_AGGREGATION",
                f"The non-aggregating expression `{item.ref.output_name}` "
                "is based on columns which are not participating in the GROUP BY clause.",
                "42803",
            )
