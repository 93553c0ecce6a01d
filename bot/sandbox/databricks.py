"""A local Databricks workspace that the real databricks-sdk talks to over HTTP.

`DatabricksSandbox` serves the REST shapes tokenbot relies on (see ../shared/APIS.md) from memory:
token management (admin), own tokens, SCIM Users / ServicePrincipals / Me, secrets, workspace-conf,
SQL warehouses and statement execution over an in-memory `system.access.audit` table, plus the
`/.well-known/databricks-config`, OIDC discovery and token endpoints for OAuth M2M. Faults come from
`bot.sandbox.server.SandboxServer`.

Identities: the admin (`admin_token`) is a real SCIM user (`ADMIN_USER_ID`, `admin_user_name`) and
is listed by `/Users`. Tokens created through the API authenticate as their owner (non-admin unless
the owner is the admin) and mark themselves used; tokens added with `add_token` have no value.

SQL subset (anything else answers status FAILED with an error naming what is unsupported)::

    query     := SELECT item [, item ...]
                 FROM system.access.audit [[AS] alias]
                 [[LEFT [OUTER] | INNER] JOIN ( query ) [AS] alias ON column = column]
                 [WHERE predicate [AND predicate ...]]
                 [GROUP BY column [, column ...]]
                 [HAVING aggregate op value [AND ...]]
                 [ORDER BY column-or-alias-or-aggregate [ASC|DESC] [, ...]]
                 [LIMIT n]
    statement := query [;]

    item      := column | aggregate  [[AS] alias]
    aggregate := count(*) | count(column) | count(DISTINCT column) | min(column) | max(column)
    column    := [alias.] name | struct.field | map.key | map['key']
                 e.g. event_time, a.user_identity.email, response.statusCode,
                 request_params.tokenId, request_params['tokenId'], t.token_id
    predicate := column (= | != | <> | < | <= | > | >=) value
               | column [NOT] IN (value [, value ...])
               | column IS [NOT] NULL
    value     := :named_parameter | 'string' | "string" | number | TRUE | FALSE | NULL

Names are case-insensitive (map keys are not); values are compared after casting them to the
column's type (TIMESTAMP, DATE, INT, STRING), as Spark does. A join is one equality between an
audit column and a column of the sub-query (NULL never matches; LEFT keeps unmatched rows); an
unqualified name found on both sides is AMBIGUOUS_REFERENCE, as in Spark. Not supported: OR, NOT
(other than NOT IN / IS NOT NULL), parentheses in predicates, functions other than the aggregates,
SELECT DISTINCT, joins of tables, RIGHT/FULL/CROSS joins, sub-queries outside a JOIN, `SELECT *`,
positional `?` parameters. Results are JSON_ARRAY rows of
strings or nulls, cut into chunks of `chunk_rows` rows (Databricks cuts by size, not rows); a result
over `inline_byte_limit` (25 MiB) fails as Databricks' does; `row_limit` and `byte_limit` truncate.

Credentials: an unknown, revoked or expired token gets Databricks' 403 "Invalid access token." (an
expired OAuth access token "JWT has expired"), not 401 (see `CredentialRefused`); OAuth access
tokens live `oauth_token_lifetime` seconds.

Knowingly not emulated: token scope names are not validated; Databricks' own inactivity revocation
and auto-scoping do not run by themselves (call `revoke_token` / `set_autoscope`); disabling tokens
(`enableTokensConfig`) only blocks creation; secret ACLs (non-admins may not write, admins may);
EXTERNAL_LINKS / ARROW_STREAM results; OAuth U2M and token exchange; the answer to a request with
no credentials at all (401 here, *unconfirmed*).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.sandbox.server import Fault, Request, Response, SandboxServer

ADMIN_USER_ID = "1000000000000001"
NON_ADMIN_USER_ID = "1000000000000002"  # who `add_non_admin_token` credentials are, by default
NON_ADMIN_USER_NAME = "user@example.com"
DEFAULT_WORKSPACE_ID = 1234567890123456
DEFAULT_ACCOUNT_ID = "00000000-0000-4000-8000-0000000000aa"
TOKEN_QUOTA_PER_USER = 600
DEFAULT_TOKEN_LIFETIME = timedelta(days=730)
SECRET_MAX_BYTES = 128 * 1024
SECRET_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
SCIM_MAX_PAGE = 10_000
USER_SELECTED = "AUTOSCOPE_STATE_USER_SELECTED"
# Statement Execution, disposition INLINE: the whole result may hold at most 25 MiB; over it the
# statement ends FAILED with this BAD_REQUEST (databricks-sdk `service/sql.py` docstring of
# StatementExecutionAPI: "limited to 25 MiB and will fail when this limit is exceeded"; the message
# as users met it: databrickslabs/ucx issues #3447 and #4675). Databricks measures "internal storage
# metrics" that do not exactly match the payload (same docstring); the sandbox counts the bytes of
# the compact JSON of the rows.
INLINE_BYTE_LIMIT = 25 * 1024 * 1024
INLINE_LIMIT_MESSAGE = (
    "Inline byte limit exceeded. Statements executed with disposition=INLINE can have a result size "
    "of at most {limit} bytes. Please execute the statement with disposition=EXTERNAL_LINKS if you want "
    "to download the full result."
)
OAUTH_TOKEN_LIFETIME = 3600  # seconds: Databricks' OAuth access tokens live one hour (OAuth M2M docs)

SCIM_LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCIM_ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_USER_SCHEMAS = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:workspace:2.0:User",
]
SCIM_SP_SCHEMAS = ["urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal"]

# Error codes the fault injector puts in its bodies, by HTTP status.
FAULT_CODES = {
    400: ("INVALID_PARAMETER_VALUE", "Invalid parameter value."),
    401: ("UNAUTHENTICATED", "Invalid access token."),
    403: ("PERMISSION_DENIED", "Permission denied."),
    404: ("RESOURCE_DOES_NOT_EXIST", "The resource does not exist."),
    409: ("RESOURCE_CONFLICT", "Conflicting request."),
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests; slow down."),
    500: ("INTERNAL_ERROR", "Internal server error."),
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable."),
    504: ("DEADLINE_EXCEEDED", "The request timed out."),
}


# ------------------------------------------------------------------------------------------------
# time and errors


def _ms(value: datetime | int | float) -> int:
    """Milliseconds since the epoch from an aware datetime (or ms as is)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC datetime")
        return int(value.timestamp() * 1000)
    return int(value)


def _midnight_ms(value: datetime | int | float) -> int:
    """Midnight UTC of the day `value` falls on, in ms: Databricks' `last_used_day`."""
    day = datetime.fromtimestamp(_ms(value) / 1000, UTC).date()
    return _ms(datetime(day.year, day.month, day.day, tzinfo=UTC))


class ApiError(Exception):
    """A Databricks error answer: `{"error_code", "message"}` with an HTTP status."""

    def __init__(self, status: int, code: str | int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return Response(self.status, {"error_code": self.code, "message": self.message})


class CredentialRefused(ApiError):
    """The workspace's front door refusing a bearer token that is unknown, revoked or expired.

    Real workspaces answer HTTP 403 (not 401) with a *numeric* `error_code` and the reason again in
    `X-Databricks-Reason-Phrase`: `{"error_code": 403, "message": "Invalid access token."}` for a
    PAT (databricks-sdk-go issues #873, #917, #1046: Content-Length 52 is this compact body, and
    the Go SDK of the time failed to read the number into its string field), and
    `"JWT has expired"` for an expired OAuth access token (databricks-sdk-go issue #1061). It is
    not `PERMISSION_DENIED`, which a valid but non-admin identity gets."""

    def __init__(self, message: str = "Invalid access token.") -> None:
        super().__init__(403, 403, message)

    def response(self) -> Response:
        response = super().response()
        response.headers["X-Databricks-Reason-Phrase"] = self.message
        return response


class ScimError(ApiError):
    """A SCIM error answer (RFC 7644 section 3.12), which the SDK parses differently."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(status, f"SCIM_{status}", detail)
        self.scim_type = scim_type

    def response(self) -> Response:
        body = {"schemas": [SCIM_ERROR_SCHEMA], "detail": self.message, "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return Response(self.status, body)


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def fault_body(fault: Fault) -> dict[str, str]:
    """The Databricks error body an injected fault answers with."""
    code, message = FAULT_CODES.get(fault.status, ("UNKNOWN", f"HTTP {fault.status}"))
    return {"error_code": code, "message": message}


# ------------------------------------------------------------------------------------------------
# the audit table and its SQL subset

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
_TYPE_TEXT = {"STRING": "STRING", "TIMESTAMP": "TIMESTAMP", "DATE": "DATE", "INT": "INT", "LONG": "BIGINT",
              "MAP": "MAP<STRING, STRING>"}
_SUBSET = ("SELECT columns/count/min/max FROM system.access.audit [alias] [[LEFT] JOIN (sub-query) "
           "alias ON column = alias.column] [WHERE comparisons joined by AND] [GROUP BY] [HAVING] "
           "[ORDER BY] [LIMIT]")


class SqlError(Exception):
    """Makes a statement FAILED; `message` follows Databricks' `[ERROR_CLASS] text` style."""

    def __init__(self, error_class: str, message: str, sql_state: str) -> None:
        super().__init__(f"[{error_class}] {message}")
        self.sql_state = sql_state


def _unsupported(what: str) -> SqlError:
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
        joined = row.get(_joined_key(self.alias))
        return None if joined is None else joined.get(self.name)


def _joined_key(alias: str) -> str:
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


_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+|--[^\n]*)
    |(?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
    |(?P<quoted>`[^`]+`)
    |(?P<param>:[A-Za-z_][A-Za-z0-9_]*)
    |(?P<number>\d+(?:\.\d+)?)
    |(?P<word>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op><=|>=|<>|!=|=|<|>)
    |(?P<punct>[(),.\[\]*;])""",
    re.VERBOSE,
)
_AGGREGATES = ("count", "min", "max")
_KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "is", "null", "group", "by", "order",
             "limit", "asc", "desc", "as", "having", "join", "union", "distinct", "true", "false", "on",
             "left", "right", "inner", "outer", "full", "cross"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int

    def word(self) -> str | None:
        return self.text.lower() if self.kind == "word" else None


def _tokenize(sql: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(sql):
        match = _TOKEN_RE.match(sql, pos)
        if match is None:
            raise _unsupported(f"the character {sql[pos]!r} at position {pos}")
        if match.lastgroup != "ws":
            tokens.append(_Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    return tokens


def _unquote(text: str) -> str:
    quote, inner = text[0], text[1:-1]
    inner = inner.replace(quote * 2, quote)
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), inner)


class SqlParser:
    """A recursive-descent parser for the SQL subset in the module docstring."""

    def __init__(self, sql: str) -> None:
        self.tokens = _tokenize(sql)
        self.i = 0
        self._audit_aliases: set[str] = set()  # names of system.access.audit in this (sub-)query
        self._joined: dict[str, dict[str, SelectItem]] = {}  # alias -> output name -> item

    # token helpers -----------------------------------------------------------------------------
    def _peek(self, offset: int = 0) -> _Token | None:
        index = self.i + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise SqlError("PARSE_SYNTAX_ERROR", "Syntax error at end of input.", "42601")
        self.i += 1
        return token

    def _at_word(self, *words: str) -> bool:
        token = self._peek()
        return token is not None and token.word() in words

    def _accept_word(self, word: str) -> bool:
        if self._at_word(word):
            self.i += 1
            return True
        return False

    def _expect_word(self, word: str) -> None:
        if not self._accept_word(word):
            self._fail_here(f"expected {word.upper()}")

    def _accept(self, text: str) -> bool:
        token = self._peek()
        if token is not None and token.kind in ("punct", "op") and token.text == text:
            self.i += 1
            return True
        return False

    def _expect(self, text: str) -> None:
        if not self._accept(text):
            self._fail_here(f"expected {text!r}")

    def _fail_here(self, expected: str) -> None:
        token = self._peek()
        if token is None:
            raise SqlError("PARSE_SYNTAX_ERROR", f"Syntax error at end of input: {expected}.", "42601")
        if token.word() in ("or", "not", "join", "union", "distinct", "on", "right", "full", "cross") \
                or token.text == "(":
            raise _unsupported(f"{token.text.upper()!r} at position {token.pos}")
        raise SqlError("PARSE_SYNTAX_ERROR",
                       f"Syntax error at or near {token.text!r} (position {token.pos}): {expected}.", "42601")

    # grammar -----------------------------------------------------------------------------------
    def parse(self) -> Query:
        query = self._query()
        self._accept(";")
        if self._peek() is not None:
            self._fail_here("expected the end of the statement")
        return query

    def _query(self) -> Query:
        """One SELECT (the statement, or a sub-query up to its closing parenthesis). The FROM
        clause is read first, so that the select list may name its aliases."""
        outer_scope = self._audit_aliases, self._joined
        self._audit_aliases, self._joined = set(), {}
        try:
            self._expect_word("select")
            if self._at_word("distinct"):
                raise _unsupported("SELECT DISTINCT")
            select_at = self.i
            self._skip_to_from()
            join = self._from_clause()
            after_from, self.i = self.i, select_at
            query = Query(items=self._select_list(), join=join)
            self._expect_word("from")
            self.i = after_from
            if self._accept_word("where"):
                query.predicates = self._conjunction()
            if self._accept_word("group"):
                self._expect_word("by")
                query.group_by = self._comma_list(self._column)
            if self._accept_word("having"):
                query.having = self._having()
            if self._accept_word("order"):
                self._expect_word("by")
                query.order_by = self._comma_list(lambda: self._order_item(query.items))
            if self._accept_word("limit"):
                query.limit = self._integer()
            _check_grouping(query)
            return query
        finally:
            self._audit_aliases, self._joined = outer_scope

    def _skip_to_from(self) -> None:
        depth, index = 0, self.i
        while index < len(self.tokens):
            token = self.tokens[index]
            if token.text == "(":
                depth += 1
            elif token.text == ")":
                depth -= 1
                if depth < 0:
                    break
            elif depth == 0 and token.word() == "from":
                self.i = index
                return
            index += 1
        self.i = index
        self._fail_here("expected FROM")

    def _from_clause(self) -> Join | None:
        self._expect_word("from")
        if self._peek() is not None and self._peek().text == "(":
            raise _unsupported(f"a sub-query in FROM (position {self._peek().pos}); only in a JOIN")
        self._table()
        self._audit_aliases.add(self._table_alias() or "audit")
        if not self._at_word("left", "inner", "join"):
            return None
        left = self._accept_word("left")
        if left:
            self._accept_word("outer")
        else:
            self._accept_word("inner")
        self._expect_word("join")
        if not self._accept("("):
            raise _unsupported(f"JOIN of a table at position {self._peek().pos if self._peek() else 'end'}; "
                               "the sandbox joins only a sub-query of system.access.audit")
        inner = self._query()
        self._expect(")")
        self._accept_word("as")
        alias = self._identifier()
        self._joined[alias.lower()] = {item.output_name.lower(): item for item in inner.items}
        self._expect_word("on")
        first, _, second = self._column(), self._expect("="), self._column()
        outer, joined = (first, second) if isinstance(first, ColumnRef) else (second, first)
        sides_ok = isinstance(outer, ColumnRef) and isinstance(joined, JoinedRef)
        if not sides_ok or joined.alias != alias.lower():
            raise _unsupported("an ON condition other than `audit column = sub-query column`")
        if self._at_word("and", "or", "left", "inner", "join"):
            raise _unsupported(f"{self._peek().text.upper()} after the ON condition (one join, one equality)")
        return Join(left=left, alias=alias.lower(), query=inner, outer=outer, inner=joined.name)

    def _table_alias(self) -> str | None:
        if self._accept_word("as"):
            return self._identifier().lower()
        token = self._peek()
        if token is not None and token.kind in ("word", "quoted") and token.word() not in _KEYWORDS:
            return self._identifier().lower()
        return None

    def _having(self) -> list[Having]:
        tests = []
        while True:
            item = self._expression()
            if item.kind == "column":
                raise _unsupported("HAVING on something other than an aggregate")
            token = self._next()
            if token.kind != "op":
                self.i -= 1
                self._fail_here("expected a comparison")
            tests.append(Having(item, "!=" if token.text == "<>" else token.text, self._value()))
            if not self._accept_word("and"):
                return tests

    def _comma_list(self, parse_one: Callable[[], Any]) -> list[Any]:
        items = [parse_one()]
        while self._accept(","):
            items.append(parse_one())
        return items

    def _select_list(self) -> list[SelectItem]:
        if self._accept("*"):
            raise _unsupported("SELECT *")
        return self._comma_list(self._select_item)

    def _select_item(self) -> SelectItem:
        item = self._expression()
        alias = None
        if self._accept_word("as"):
            alias = self._identifier()
        elif self._at_alias():
            alias = self._identifier()
        return SelectItem(item.kind, item.ref, alias)

    def _at_alias(self) -> bool:
        """A bare name that is not a keyword: an alias without AS."""
        token = self._peek()
        return token is not None and token.kind in ("word", "quoted") and token.word() not in _KEYWORDS

    def _expression(self) -> SelectItem:
        token, after = self._peek(), self._peek(1)
        if token is not None and token.kind == "word" and after is not None and after.text == "(":
            name = token.word()
            if name not in _AGGREGATES:
                raise _unsupported(f"the function {token.text}() at position {token.pos}")
            self.i += 2
            if self._accept_word("distinct"):
                if name != "count":
                    raise _unsupported(f"{name}(DISTINCT ...)")
                ref = self._column()
                self._expect(")")
                return SelectItem("count_distinct", ref)
            if name == "count" and (self._accept("*") or self._accept_number_one()):
                self._expect(")")
                return SelectItem("count_star", None)
            ref = self._column()
            self._expect(")")
            if name != "count" and ref.type_name in ("MAP", "STRUCT"):
                raise _unsupported(f"{name}() over a {ref.type_name} column")
            return SelectItem(name, ref)
        return SelectItem("column", self._column())

    def _accept_number_one(self) -> bool:
        token = self._peek()
        if token is not None and token.kind == "number" and token.text == "1":
            self.i += 1
            return True
        return False

    def _identifier(self) -> str:
        token = self._next()
        if token.kind == "quoted":
            return token.text[1:-1]
        if token.kind != "word":
            self.i -= 1
            self._fail_here("expected a name")
        return token.text

    def _table(self) -> None:
        start = self._peek()
        parts = [self._identifier()]
        while self._accept("."):
            parts.append(self._identifier())
        name = ".".join(parts)
        if name.lower() != "system.access.audit":
            raise SqlError("TABLE_OR_VIEW_NOT_FOUND", f"The table or view `{name}` cannot be found "
                           f"(the sandbox serves only system.access.audit; position {start.pos}).", "42P01")

    def _column(self) -> ColumnRef | JoinedRef:
        """`[alias.]column[.field | ['key']]`; an unqualified name must not be in both sides of a join."""
        token = self._peek()
        name = self._identifier()
        lower = self._peek() is not None and self._peek().text == "." and name.lower()
        if lower and lower in self._audit_aliases:
            self.i += 1
            token = self._peek()
            return self._audit_column(self._identifier(), token)
        if lower and lower in self._joined:
            self.i += 1
            return self._joined_column(lower, self._identifier(), token)
        in_audit = any(c.lower() == name.lower() for c in AUDIT_COLUMNS)
        joined = [alias for alias, columns in self._joined.items() if name.lower() in columns]
        if joined and in_audit:
            raise SqlError("AMBIGUOUS_REFERENCE", f"Reference `{name}` (position {token.pos}) is ambiguous: "
                           f"it is a column of the audit table and of `{joined[0]}`.", "42704")
        if joined:
            return self._joined_column(joined[0], name, token)
        return self._audit_column(name, token)

    def _joined_column(self, alias: str, name: str, token: _Token) -> JoinedRef:
        item = self._joined[alias].get(name.lower())
        if item is None:
            raise SqlError("UNRESOLVED_COLUMN", f"A column with name `{alias}.{name}` (position {token.pos}) "
                           f"cannot be resolved; `{alias}` has: {', '.join(self._joined[alias])}.", "42703")
        return JoinedRef(alias, item.output_name, item.type_name, item.type_text)

    def _audit_column(self, name: str, token: _Token) -> ColumnRef:
        column = next((c for c in AUDIT_COLUMNS if c.lower() == name.lower()), None)
        if column is None and self._peek() is not None and self._peek().text == ".":
            raise SqlError("UNRESOLVED_COLUMN", f"`{name}` (position {token.pos}) is neither a table alias "
                           "nor a column of the audit table.", "42703")
        if column is None:
            raise SqlError("UNRESOLVED_COLUMN", f"A column with name `{name}` (position {token.pos}) cannot "
                           f"be resolved; the audit table has: {', '.join(AUDIT_COLUMNS)}.", "42703")
        kind = AUDIT_COLUMNS[column]
        if kind == "MAP" and self._accept("["):
            key = self._next()
            if key.kind != "string":
                raise _unsupported(f"a non-literal map key at position {key.pos}")
            self._expect("]")
            return ColumnRef(column, _unquote(key.text), dotted=False)
        if not self._accept("."):
            return ColumnRef(column)
        field_name = self._identifier()
        if kind == "MAP":
            return ColumnRef(column, field_name)
        if kind != "STRUCT":
            raise SqlError("INVALID_EXTRACT_BASE_FIELD_TYPE",
                           f"Cannot extract a field from `{column}`, which is {kind}.", "42000")
        field = next((f for f in STRUCT_FIELDS[column] if f.lower() == field_name.lower()), None)
        if field is None:
            raise SqlError("FIELD_NOT_FOUND", f"No such struct field `{field_name}` in `{column}`; "
                           f"it has: {', '.join(STRUCT_FIELDS[column])}.", "42704")
        if self._peek() is not None and self._peek().text == ".":
            raise _unsupported(f"nested field access at position {self._peek().pos}")
        return ColumnRef(column, field)

    def _conjunction(self) -> list[Predicate]:
        predicates = [self._predicate()]
        while self._accept_word("and"):
            predicates.append(self._predicate())
        if self._at_word("or"):
            raise _unsupported(f"OR at position {self._peek().pos}")
        return predicates

    def _predicate(self) -> Predicate:
        if self._at_word("not") or (self._peek() is not None and self._peek().text == "("):
            raise _unsupported(f"{self._peek().text.upper()!r} at position {self._peek().pos}")
        ref = self._column()
        if ref.type_name in ("MAP", "STRUCT"):
            raise _unsupported(f"comparing the whole {ref.type_name} column `{ref.column}`")
        if self._accept_word("is"):
            negated = self._accept_word("not")
            self._expect_word("null")
            return Predicate(ref, "is not null" if negated else "is null")
        negated = self._accept_word("not")
        if self._accept_word("in"):
            self._expect("(")
            operands = self._comma_list(self._value)
            self._expect(")")
            return Predicate(ref, "not in" if negated else "in", tuple(operands))
        if negated:
            self._fail_here("expected IN after NOT")
        token = self._peek()
        if token is None or token.kind != "op":
            self._fail_here("expected a comparison (=, !=, <>, <, <=, >, >=, IN, IS [NOT] NULL)")
        self.i += 1
        op = "!=" if token.text == "<>" else token.text
        return Predicate(ref, op, (self._value(),))

    def _value(self) -> Operand:
        token = self._next()
        if token.kind == "param":
            return Operand(param=token.text[1:])
        if token.kind == "string":
            return Operand(literal=_unquote(token.text))
        if token.kind == "number":
            return Operand(literal=float(token.text) if "." in token.text else int(token.text))
        if token.word() in ("true", "false"):
            return Operand(literal=token.word() == "true")
        if token.word() == "null":
            return Operand(literal=None)
        if token.text == "?":
            raise _unsupported("positional parameters (?)")
        raise _unsupported(f"the expression {token.text!r} at position {token.pos} (only :params, literals)")

    def _order_item(self, items: list[SelectItem]) -> tuple[int, bool]:
        token, after = self._peek(), self._peek(1)
        index = None
        if token is not None and token.kind in ("word", "quoted") and (after is None or after.text != "("):
            name = token.text.strip("`").lower()
            index = next((i for i, item in enumerate(items) if (item.alias or "").lower() == name), None)
            if index is not None:
                self.i += 1
        if index is None:
            expression = self._expression()
            index = next((i for i, item in enumerate(items)
                          if (item.kind, item.ref) == (expression.kind, expression.ref)), None)
            if index is None:
                raise _unsupported(f"ORDER BY something not in the SELECT list (position {token.pos})")
        descending = self._accept_word("desc")
        if not descending:
            self._accept_word("asc")
        if self._at_word("nulls"):
            raise _unsupported("NULLS FIRST/LAST")
        return index, descending

    def _integer(self) -> int:
        token = self._next()
        if token.kind != "number" or "." in token.text:
            self.i -= 1
            self._fail_here("expected an integer")
        return int(token.text)


def _check_grouping(query: Query) -> None:
    if query.having and not query.aggregates:
        raise SqlError("MISSING_GROUP_BY", "HAVING needs GROUP BY or an aggregate.", "42803")
    if not query.aggregates:
        return
    for ref in query.group_by:
        if ref.type_name in ("MAP", "STRUCT"):
            raise _unsupported(f"GROUP BY the {ref.type_name} column `{ref.column}`")
    for item in query.items:
        if item.kind == "column" and item.ref not in query.group_by:
            raise SqlError("MISSING_AGGREGATION", f"The non-aggregating expression `{item.ref.output_name}` "
                           "is based on columns which are not participating in the GROUP BY clause.", "42803")


def _cast(value: Any, type_name: str, what: str) -> Any:
    """Cast a parameter or literal to a column's type, as Spark's implicit casts do."""
    if value is None:
        return None
    try:
        if type_name == "TIMESTAMP":
            return _parse_timestamp(value)
        if type_name == "DATE":
            return value if isinstance(value, date) and not isinstance(value, datetime) else \
                date.fromisoformat(str(value).strip()[:10])
        if type_name in ("INT", "LONG"):
            return int(str(value).strip())
        if isinstance(value, bool):
            return str(value).lower()
        return str(value)
    except ValueError:
        raise SqlError("CAST_INVALID_INPUT", f"The value {value!r} of {what} cannot be cast to {type_name}.",
                       "22018") from None


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
    return lambda members: (v := _aggregate(item, members)) is not None and expected is not None \
        and compare(v, expected)


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
    key, joined = _joined_key(join.alias), []
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
            result.append([by_ref[item.ref] if item.kind == "column" else _aggregate(item, members)
                           for item in query.items])
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


# ------------------------------------------------------------------------------------------------
# sandbox state


@dataclass
class Principal:
    """A SCIM user or service principal; `scim` is its SCIM representation."""

    id: str
    kind: str  # "user" or "sp"
    scim: dict[str, Any]

    @property
    def name(self) -> str:
        """`userName` for users, `applicationId` for service principals."""
        return self.scim["userName"] if self.kind == "user" else self.scim["applicationId"]


@dataclass
class Credential:
    principal_id: str
    admin: bool
    token_id: str | None = None  # set for tokens created through the API
    expires_at: datetime | None = None  # set for OAuth access tokens


@dataclass
class Statement:
    id: str
    state: str
    columns: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[list[list[str | None]]] = field(default_factory=list)
    truncated: bool = False
    error: dict[str, str] | None = None
    sql_state: str | None = None

    @property
    def row_count(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


@dataclass
class LostAnswer:
    """A request that is applied and whose answer is then lost: see `DatabricksSandbox.fail`."""

    method: str
    path: re.Pattern[str]
    times: int
    late_by: float  # 0: drop the connection; else answer after this many seconds

    def matches(self, request: Request) -> bool:
        return self.method in ("*", request.method) and bool(self.path.search(request.path))


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Response]
    access: str  # public, user, admin


def _user_scim(id: str, user_name: str, display_name: str | None, active: bool) -> dict[str, Any]:
    return {
        "schemas": SCIM_USER_SCHEMAS,
        "id": id,
        "userName": user_name,
        "displayName": display_name or user_name,
        "active": active,
        "emails": [{"value": user_name, "primary": True, "type": "work"}],
    }


def _sp_scim(id: str, application_id: str, display_name: str | None, active: bool) -> dict[str, Any]:
    return {
        "schemas": SCIM_SP_SCHEMAS,
        "id": id,
        "applicationId": application_id,
        "displayName": display_name or application_id,
        "active": active,
    }


def _numeric_id(value: str | int, what: str) -> str:
    text = str(value)
    if not text.isdigit():
        raise ValueError(f"{what} {value!r} must be numeric: Databricks ids are int64")
    return text


# ------------------------------------------------------------------------------------------------
# the sandbox


class DatabricksSandbox:
    """One local Databricks workspace; a context manager. Builders may be called before `start()`."""

    def __init__(
        self,
        admin_token: str = "dapi-sandbox-admin",  # noqa: S107 - a sandbox credential
        workspace_id: int = DEFAULT_WORKSPACE_ID,
        *,
        admin_user_name: str = "admin@example.com",
        chunk_rows: int = 1000,
        token_quota: int = TOKEN_QUOTA_PER_USER,
        oauth_token_lifetime: float = OAUTH_TOKEN_LIFETIME,
        inline_byte_limit: int = INLINE_BYTE_LIMIT,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.admin_token = admin_token
        self.workspace_id = int(workspace_id)
        self.account_id = DEFAULT_ACCOUNT_ID
        self.chunk_rows = chunk_rows
        self.token_quota = token_quota
        self.oauth_token_lifetime = oauth_token_lifetime  # seconds; tests set a few
        self.inline_byte_limit = inline_byte_limit  # tests set a small one
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._principals: dict[str, Principal] = {}
        self._credentials: dict[str, Credential] = {admin_token: Credential(ADMIN_USER_ID, admin=True)}
        self._tokens: dict[str, dict[str, Any]] = {}
        self._conf: dict[str, str | None] = {"maxTokenLifetimeDays": "730", "enableTokensConfig": "true"}
        self._scopes: dict[str, dict[str, str | bytes]] = {}
        self._secret_times: dict[tuple[str, str], int] = {}  # last_updated_timestamp, ms
        self._lost_answers: list[LostAnswer] = []
        self._warehouses: dict[str, str] = {}
        self._audit: list[dict[str, Any]] = []
        self._statements: dict[str, Statement] = {}
        self._oauth_clients: dict[str, str] = {}
        self._admin_ids = {ADMIN_USER_ID}  # principals whose new tokens are admin credentials
        self._next_id = 1000000000000100
        self._principals[ADMIN_USER_ID] = Principal(
            ADMIN_USER_ID, "user", _user_scim(ADMIN_USER_ID, admin_user_name, "Sandbox Admin", True))
        self._routes = self._build_routes()
        self._server = SandboxServer("databricks", self._route, fault_body)

    # lifecycle ----------------------------------------------------------------------------------
    def start(self) -> DatabricksSandbox:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> DatabricksSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self._server.base_url

    @property
    def requests(self) -> list[Request]:
        return self._server.requests

    # faults (see SandboxServer.fail; status 0 with a delay adds latency only) ------------------------
    def fail(self, method: str, path_regex: str, status: int = 0, times: int = 1,
             retry_after: float | None = None, delay: float = 0, drop: bool = False,
             body: Any = None, *, apply_then_drop: bool = False, answer_late_by: float = 0,
             after: int = 0) -> None:
        """Inject a fault into the next `times` matching requests (after the next `after` of them,
        answered normally: a read that works, then fails).

        `apply_then_drop` / `answer_late_by=seconds`: the request is applied (the token created or
        deleted, the scopes or the secret written) and then its answer is lost: the connection is
        dropped, or the answer comes after that many seconds (past the client's
        http_timeout_seconds). Real services do this under network faults (a reset after the
        server committed, a proxy timing out a slow answer), and the client cannot tell it from
        a request that never arrived. The SDK retries both, for every method (`_is_retryable` in
        databricks/sdk/_base_client.py: `requests.ConnectionError` and `requests.Timeout`), until
        retry_timeout_seconds, then raises TimeoutError: a retried create makes a second token."""
        if apply_then_drop or answer_late_by:
            with self._lock:
                self._lost_answers.append(
                    LostAnswer(method.upper(), re.compile(path_regex), times, float(answer_late_by)))
            return
        self._server.fail(method, path_regex, status, times, retry_after, delay, drop, body, after)

    def clear_faults(self) -> None:
        self._server.clear_faults()
        with self._lock:
            self._lost_answers.clear()

    def _lose_answer(self, request: Request, response: Response) -> Response | None:
        """After routing: None (a dropped connection) or the answer, late, for a lost-answer fault."""
        with self._lock:
            lost = next((fault for fault in self._lost_answers if fault.matches(request)), None)
            if lost is None:
                return response
            lost.times -= 1
            if lost.times <= 0:
                self._lost_answers.remove(lost)
        if not lost.late_by:
            return None
        time.sleep(lost.late_by)  # outside the lock: the rest of the workspace keeps answering
        return response

    def down(self) -> None:
        self._server.down()

    def up(self) -> None:
        self._server.up()

    # builders -----------------------------------------------------------------------------------
    def _new_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return str(self._next_id)

    def add_user(self, id: str | int | None = None, user_name: str = "", display_name: str | None = None,
                 active: bool = True) -> str:
        """Add a SCIM user; `user_name` is the email. Returns the id."""
        id = _numeric_id(id, "user id") if id is not None else self._new_id()
        if not user_name:
            raise ValueError("add_user needs user_name (the email)")
        with self._lock:
            self._principals[id] = Principal(id, "user", _user_scim(id, user_name, display_name, active))
        return id

    def add_service_principal(self, id: str | int | None = None, application_id: str | None = None,
                              display_name: str | None = None, active: bool = True) -> str:
        """Add a SCIM service principal. Returns the id."""
        id = _numeric_id(id, "service principal id") if id is not None else self._new_id()
        application_id = application_id or str(uuid.uuid4())
        with self._lock:
            self._principals[id] = Principal(id, "sp", _sp_scim(id, application_id, display_name, active))
        return id

    def add_token(
        self,
        token_id: str | None = None,
        *,
        owner_id: str | int,
        created_by: str | int | None = None,
        comment: str = "",
        created_at: datetime | int | None = None,
        expires_at: datetime | int | None = None,
        last_used_at: datetime | int | None = None,
        scopes: Iterable[str] = (),
        inferred_scopes: Iterable[str] = (),
        autoscope_state: str | None = None,
    ) -> str:
        """Add a token as Databricks would list it (no usable value). Returns its id.

        `created_by` defaults to the owner; times are aware datetimes or ms since the epoch."""
        owner = _numeric_id(owner_id, "owner_id")
        creator = _numeric_id(created_by, "created_by") if created_by is not None else owner
        info = {
            "token_id": token_id or secrets.token_hex(32),
            "owner_id": int(owner),
            "created_by_id": int(creator),
            "created_by_username": None,
            "comment": comment,
            "creation_time": _ms(created_at if created_at is not None else self._clock()),
            "expiry_time": -1 if expires_at is None else _ms(expires_at),
            "last_used_day": None if last_used_at is None else _midnight_ms(last_used_at),
            "scopes": list(scopes),
            "inferred_scopes": list(inferred_scopes),
            "backfill_scopes": [],
            "autoscope_state": autoscope_state,
            "workspace_id": self.workspace_id,
        }
        with self._lock:
            creator_principal = self._principals.get(creator)
            info["created_by_username"] = creator_principal.name if creator_principal else None
            self._tokens[info["token_id"]] = info
        return info["token_id"]

    def add_audit_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append rows to `system.access.audit` (see `normalise_audit_row` for the accepted forms)."""
        workspace_id = str(self.workspace_id)
        normalised = [normalise_audit_row(row, workspace_id=workspace_id, account_id=self.account_id)
                      for row in rows]
        with self._lock:
            self._audit.extend(normalised)

    def add_secret_scope(self, name: str) -> None:
        with self._lock:
            self._scopes.setdefault(name, {})

    def add_warehouse(self, id: str, state: str = "RUNNING") -> None:
        """Register a SQL warehouse; STOPPED ones start when a statement arrives (it answers PENDING)."""
        with self._lock:
            self._warehouses[id] = state

    def set_conf(self, key: str, value: str | None) -> None:
        with self._lock:
            self._conf[key] = None if value is None else str(value)

    def add_non_admin_token(self, token: str, user_id: str | int | None = None) -> None:
        """A credential that authenticates (as `user_id`, or a built-in user) but is not a workspace admin."""
        principal = _numeric_id(user_id, "user_id") if user_id is not None else NON_ADMIN_USER_ID
        with self._lock:
            self._credentials[token] = Credential(principal, admin=False)

    def enable_oauth(self, client_id: str, client_secret: str) -> None:
        """Switch on OAuth M2M; the client's access tokens act as the service principal with that
        application id if there is one, else as the admin user, and are workspace admins."""
        with self._lock:
            self._oauth_clients[client_id] = client_secret

    # simulating Databricks' own actions ---------------------------------------------------------
    def mark_used(self, token_id: str, when: datetime | int | None = None) -> None:
        with self._lock:
            self._token(token_id)["last_used_day"] = _midnight_ms(when if when is not None else self._clock())

    def revoke_token(self, token_id: str) -> None:
        """Databricks revokes a token (inactivity, clean-up): it disappears and stops authenticating."""
        with self._lock:
            self._token(token_id)
            self._delete_token(token_id)

    def set_autoscope(self, token_id: str, state: str | None, scopes: Iterable[str] | None = None,
                      inferred_scopes: Iterable[str] | None = None) -> None:
        """Set the raw autoscope state (any string, served as is) and optionally the scopes."""
        with self._lock:
            info = self._token(token_id)
            info["autoscope_state"] = state
            if scopes is not None:
                info["scopes"] = list(scopes)
            if inferred_scopes is not None:
                info["inferred_scopes"] = list(inferred_scopes)

    # readers ------------------------------------------------------------------------------------
    def tokens(self) -> list[dict[str, Any]]:
        """Every token as the token-management API would serve it now."""
        with self._lock:
            return [_token_json(info) for info in self._tokens.values()]

    def secrets(self) -> dict[tuple[str, str], str | bytes]:
        with self._lock:
            return {(scope, key): value
                    for scope, entries in self._scopes.items() for key, value in entries.items()}

    def conf(self) -> dict[str, str | None]:
        with self._lock:
            return dict(self._conf)

    # routing ------------------------------------------------------------------------------------
    def _build_routes(self) -> list[Route]:
        scim = r"/api/2\.0/preview/scim/v2"
        tm = r"/api/2\.0/token-management"
        table = [
            ("GET", r"/\.well-known/databricks-config", self._well_known, "public"),
            ("GET", r"/oidc/\.well-known/oauth-authorization-server", self._oidc_discovery, "public"),
            ("POST", r"/oidc/v1/token", self._oidc_token, "public"),
            ("GET", tm + r"/tokens", self._list_tokens, "admin"),
            ("GET", tm + r"/tokens/(?P<token_id>[^/]+)", self._get_token, "admin"),
            ("DELETE", tm + r"/tokens/(?P<token_id>[^/]+)", self._delete_token_route, "admin"),
            ("PATCH", tm + r"/tokens/(?P<token_id>[^/]+)", self._patch_token, "admin"),
            ("POST", tm + r"/on-behalf-of/tokens", self._create_obo_token, "admin"),
            ("POST", r"/api/2\.0/token/create", self._create_own_token, "user"),
            ("GET", r"/api/2\.0/token/list", self._list_own_tokens, "user"),
            ("POST", r"/api/2\.0/token/delete", self._delete_own_token, "user"),
            ("PATCH", r"/api/2\.0/token/(?P<token_id>[^/]+)", self._patch_own_token, "user"),
            ("GET", scim + r"/Me", self._scim_me, "user"),
            ("GET", scim + r"/Users", lambda r, c: self._scim_list(r, "user"), "user"),
            ("GET", scim + r"/Users/(?P<id>[^/]+)", lambda r, c, id: self._scim_get(r, "user", id), "user"),
            ("GET", scim + r"/ServicePrincipals", lambda r, c: self._scim_list(r, "sp"), "user"),
            ("GET", scim + r"/ServicePrincipals/(?P<id>[^/]+)", lambda r, c, id: self._scim_get(r, "sp", id),
             "user"),
            ("POST", r"/api/2\.0/secrets/put", self._put_secret, "admin"),
            ("POST", r"/api/2\.0/secrets/scopes/create", self._create_scope, "admin"),
            ("GET", r"/api/2\.0/secrets/scopes/list", self._list_scopes, "user"),
            ("GET", r"/api/2\.0/secrets/list", self._list_secrets, "user"),
            ("GET", r"/api/2\.0/workspace-conf", self._get_conf, "user"),
            ("PATCH", r"/api/2\.0/workspace-conf", self._set_conf_route, "admin"),
            ("GET", r"/api/2\.0/sql/warehouses", self._list_warehouses, "user"),
            ("GET", r"/api/2\.0/sql/warehouses/(?P<id>[^/]+)", self._get_warehouse, "user"),
            ("POST", r"/api/2\.0/sql/statements/?", self._execute_statement, "user"),
            ("GET", r"/api/2\.0/sql/statements/(?P<statement_id>[^/]+)", self._get_statement, "user"),
            ("POST", r"/api/2\.0/sql/statements/(?P<statement_id>[^/]+)/cancel", self._cancel_statement,
             "user"),
            ("GET", r"/api/2\.0/sql/statements/(?P<statement_id>[^/]+)/result/chunks/(?P<index>\d+)",
             self._get_chunk, "user"),
        ]
        return [Route(method, re.compile(pattern), handler, access)
                for method, pattern, handler, access in table]

    def _route(self, request: Request) -> Response | None:
        route, match = next(((r, m) for r in self._routes if r.method == request.method
                             and (m := r.pattern.fullmatch(request.path))), (None, None))
        if route is None:
            response = ApiError(404, "ENDPOINT_NOT_FOUND",
                                f"No API found for '{request.method} {request.path}'").response()
        else:
            with self._lock:
                try:
                    caller = None if route.access == "public" else self._authenticate(request, route.access)
                    response = route.handler(request, caller, **match.groupdict())
                except ApiError as error:
                    response = error.response()
        response.headers.setdefault("x-databricks-org-id", str(self.workspace_id))
        return self._lose_answer(request, response)

    def _authenticate(self, request: Request, access: str) -> Principal:
        header = request.header("authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:  # *unconfirmed*: no public log of this answer
            raise ApiError(401, "UNAUTHENTICATED",
                           "Credential was not sent or was of an unsupported type for this API.")
        credential = self._credentials.get(value.strip())
        if credential is None or not self._credential_live(credential):
            raise CredentialRefused()
        if credential.expires_at is not None and credential.expires_at <= self._clock():
            raise CredentialRefused("JWT has expired")
        if access == "admin" and not credential.admin:  # the code is Databricks'; the text *unconfirmed*
            raise ApiError(403, "PERMISSION_DENIED", "Only workspace admins can use this API.")
        if credential.token_id is not None:
            self._tokens[credential.token_id]["last_used_day"] = _midnight_ms(self._clock())
        return self._principals.get(credential.principal_id) or Principal(
            credential.principal_id, "user",
            _user_scim(credential.principal_id, NON_ADMIN_USER_NAME, "Sandbox User", True))

    def _credential_live(self, credential: Credential) -> bool:
        if credential.token_id is None:
            return True
        info = self._tokens.get(credential.token_id)
        return info is not None and (info["expiry_time"] == -1 or info["expiry_time"] > _ms(self._clock()))

    # OAuth ------------------------------------------------------------------------------------------
    def _well_known(self, request: Request, caller: None) -> Response:
        """Host metadata, public, which every SDK client reads first (`Config._resolve_host_metadata`
        in databricks-sdk 0.162; a failure only logs "Failed to automatically resolve config from
        host metadata ... Falling back"). The SDK reads `oidc_endpoint` (the OIDC root: it appends
        `/.well-known/oauth-authorization-server`), `account_id`, `workspace_id` (a string), `cloud`
        and `token_federation_default_oidc_audiences` (`oauth.HostMetadata`). A workspace host names
        its own `/oidc` and both ids (databricks-sdk-go `config/host_metadata_test.go`), and
        `host_type` "workspace" (databricks-sdk-java PR #747; the Go SDK lower-cases it). The
        audiences list is left out: its value for a workspace is not public (*unconfirmed*)."""
        return Response(body={"oidc_endpoint": f"{self.url}/oidc", "account_id": self.account_id,
                              "workspace_id": str(self.workspace_id), "cloud": "AWS",
                              "host_type": "workspace"})

    def _oidc_discovery(self, request: Request, caller: None) -> Response:
        base = f"{self.url}/oidc"
        return Response(body={
            "issuer": base,
            "authorization_endpoint": f"{base}/v1/authorize",
            "token_endpoint": f"{base}/v1/token",
            "jwks_uri": f"{base}/jwks.json",
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        })

    def _oidc_token(self, request: Request, caller: None) -> Response:
        client_id, client_secret = request.form.get("client_id"), request.form.get("client_secret")
        scheme, _, encoded = (request.header("authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = None
        if request.form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type",
                                  "error_description": "Only client_credentials is emulated."})
        if not client_id or self._oauth_clients.get(client_id) != client_secret:
            return Response(401, {"error": "invalid_client",
                                  "error_description": "Client authentication failed."})
        access_token = "eyJsandbox." + secrets.token_urlsafe(32)
        sp = next((p for p in self._principals.values() if p.kind == "sp" and p.name == client_id), None)
        principal_id = sp.id if sp else ADMIN_USER_ID
        self._admin_ids.add(principal_id)
        # Access tokens expire (`expires_in`), then are refused with "JWT has expired"; there is no
        # refresh token for client_credentials: the SDK asks again (oauth.ClientCredentials), and
        # counts a token as expired 40 s before `expires_in` runs out (oauth.Token.expired).
        lifetime = timedelta(seconds=self.oauth_token_lifetime)
        self._credentials[access_token] = Credential(principal_id, admin=True,
                                                     expires_at=self._clock() + lifetime)
        return Response(body={"access_token": access_token, "token_type": "Bearer",
                              "expires_in": int(self.oauth_token_lifetime),
                              "scope": request.form.get("scope", "all-apis")})

    # token management ---------------------------------------------------------------------------
    def _token(self, token_id: str) -> dict[str, Any]:
        info = self._tokens.get(token_id)
        if info is None:
            raise _not_found(f"Token with id {token_id} does not exist.")
        return info

    def _delete_token(self, token_id: str) -> None:
        del self._tokens[token_id]
        for value in [v for v, c in self._credentials.items() if c.token_id == token_id]:
            del self._credentials[value]

    def _list_tokens(self, request: Request, caller: Principal) -> Response:
        by_id, by_name = request.arg("created_by_id"), request.arg("created_by_username")
        if by_id is not None and not by_id.isdigit():
            raise _bad(f"created_by_id must be an integer, got {by_id!r}")
        infos = [info for info in self._tokens.values()
                 if (by_id is None or info["created_by_id"] == int(by_id))
                 and (by_name is None or (info["created_by_username"] or "").lower() == by_name.lower())]
        return Response(body={"token_infos": [_token_json(i) for i in infos]} if infos else {})

    def _get_token(self, request: Request, caller: Principal, token_id: str) -> Response:
        return Response(body={"token_info": _token_json(self._token(token_id))})

    def _delete_token_route(self, request: Request, caller: Principal, token_id: str) -> Response:
        self._token(token_id)
        self._delete_token(token_id)
        return Response(body={})

    def _patch_token(self, request: Request, caller: Principal, token_id: str) -> Response:
        info = self._token(token_id)
        self._apply_update(info, _json_body(request))
        return Response(body=_token_json(info))  # the SDK reads a bare TokenInfo back

    def _apply_update(self, info: dict[str, Any], body: dict[str, Any]) -> None:
        mask = body.get("update_mask")
        if not isinstance(mask, str) or not mask:
            raise _bad("update_mask is required, e.g. \"scopes\" or \"comment,scopes\".")
        paths = mask.split(",")
        wrong = [p for p in paths if p not in ("scopes", "comment")]
        if wrong:
            raise _bad(f"update_mask may name only scopes and comment, not {', '.join(wrong)}.")
        token = body.get("token") if isinstance(body.get("token"), dict) else {}
        if "comment" in paths:
            info["comment"] = str(token.get("comment") or "")
        if "scopes" in paths:
            scopes = token.get("scopes") or []
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise _bad("token.scopes must be a list of strings.")
            info["scopes"] = list(scopes)
            info["autoscope_state"] = USER_SELECTED

    def _create_obo_token(self, request: Request, caller: Principal) -> Response:
        body = _json_body(request)
        application_id = body.get("application_id")
        if not application_id:
            raise _bad("application_id is required.")
        sp = next((p for p in self._principals.values() if p.kind == "sp" and p.name == application_id), None)
        if sp is None or not sp.scim["active"]:
            raise _not_found(f"Service principal with application id {application_id} does not exist.")
        value, info = self._issue_token(owner=sp, creator=caller, body=body)
        return Response(body={"token_value": value, "token_info": _token_json(info)})

    def _issue_token(self, *, owner: Principal, creator: Principal, body: dict[str, Any]) -> tuple[str, dict]:
        if (self._conf.get("enableTokensConfig") or "true").lower() == "false":
            raise ApiError(403, "PERMISSION_DENIED", "Personal access tokens are disabled in this workspace.")
        if sum(1 for info in self._tokens.values() if info["owner_id"] == int(owner.id)) >= self.token_quota:
            raise ApiError(400, "QUOTA_EXCEEDED", f"Cannot create more than {self.token_quota} tokens.")
        now = _ms(self._clock())
        value = "dapi" + secrets.token_hex(16)
        scopes = body.get("scopes") or []
        if scopes:
            autoscope_state = USER_SELECTED
        else:
            autoscope_state = "AUTOSCOPE_STATE_RUNNING" if body.get("autoscope_enabled") else None
        token_id = self.add_token(
            token_id=hashlib.sha256(value.encode()).hexdigest(), owner_id=owner.id, created_by=creator.id,
            comment=str(body.get("comment") or ""), created_at=now,
            expires_at=now + self._lifetime_ms(body.get("lifetime_seconds")), scopes=scopes,
            autoscope_state=autoscope_state)
        self._credentials[value] = Credential(owner.id, admin=owner.id in self._admin_ids, token_id=token_id)
        return value, self._tokens[token_id]

    def _lifetime_ms(self, lifetime_seconds: Any) -> int:
        """Lifetime within the workspace's maxTokenLifetimeDays; none given means the maximum (2 years)."""
        max_days = self._conf.get("maxTokenLifetimeDays")
        max_seconds = int(max_days) * 86400 if max_days and max_days.isdigit() and int(max_days) > 0 else None
        try:
            lifetime = int(lifetime_seconds) if lifetime_seconds is not None else 0
        except (TypeError, ValueError):
            raise _bad(f"lifetime_seconds must be an integer, got {lifetime_seconds!r}.") from None
        if lifetime <= 0:
            lifetime = int(DEFAULT_TOKEN_LIFETIME.total_seconds())
            return 1000 * (min(lifetime, max_seconds) if max_seconds else lifetime)
        if max_seconds and lifetime > max_seconds:
            raise _bad(f"Token lifetime {lifetime}s exceeds the workspace maximum of {max_days} days.")
        return 1000 * lifetime

    # own tokens ---------------------------------------------------------------------------------
    def _own_token(self, caller: Principal, token_id: str) -> dict[str, Any]:
        info = self._tokens.get(token_id)
        if info is None or info["owner_id"] != int(caller.id):
            raise _not_found(f"Token with id {token_id} does not exist.")
        return info

    def _create_own_token(self, request: Request, caller: Principal) -> Response:
        value, info = self._issue_token(owner=caller, creator=caller, body=_json_body(request))
        return Response(body={"token_value": value, "token_info": _public_token_json(info)})

    def _list_own_tokens(self, request: Request, caller: Principal) -> Response:
        infos = [_public_token_json(i) for i in self._tokens.values() if i["owner_id"] == int(caller.id)]
        return Response(body={"token_infos": infos} if infos else {})

    def _delete_own_token(self, request: Request, caller: Principal) -> Response:
        token_id = str(_json_body(request).get("token_id") or "")
        self._own_token(caller, token_id)
        self._delete_token(token_id)
        return Response(body={})

    def _patch_own_token(self, request: Request, caller: Principal, token_id: str) -> Response:
        self._apply_update(self._own_token(caller, token_id), _json_body(request))
        return Response(body={})

    # SCIM ---------------------------------------------------------------------------------------
    def _scim_me(self, request: Request, caller: Principal) -> Response:
        me = copy.deepcopy(caller.scim)
        if caller.kind == "sp":  # /Me answers in the User shape; a service principal's userName is its app id
            me = _user_scim(caller.id, caller.name, caller.scim["displayName"], caller.scim["active"])
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
        matched = [p.scim for p in self._principals.values()
                   if p.kind == kind and (test is None or test(p.scim))]
        page = matched[start - 1:start - 1 + count]
        body: dict[str, Any] = {"schemas": [SCIM_LIST_SCHEMA], "totalResults": len(matched),
                                "startIndex": start, "itemsPerPage": len(page)}
        if page:  # Databricks leaves Resources out of an empty page; the SDK stops on that
            attributes, excluded = request.arg("attributes"), request.arg("excludedAttributes")
            body["Resources"] = [_project(resource, attributes, excluded) for resource in page]
        return Response(body=body)

    # secrets ------------------------------------------------------------------------------------
    def _put_secret(self, request: Request, caller: Principal) -> Response:
        body = _json_body(request)
        scope, key = body.get("scope"), body.get("key")
        if not scope or not key:
            raise _bad("scope and key are required.")
        if not isinstance(key, str) or not SECRET_KEY_RE.fullmatch(key):
            raise _bad(f"Invalid key name {key!r}: use up to 128 alphanumeric characters, '-', '_' or '.'.")
        value = self._secret_value(body)
        size = len(value.encode() if isinstance(value, str) else value)
        if size > SECRET_MAX_BYTES:
            raise _bad(f"Secret value is {size} bytes, over the 128 KB (131072 bytes) limit.")
        if scope not in self._scopes:
            raise _not_found(f"Scope {scope} does not exist!")
        entries = self._scopes[scope]
        if key not in entries and len(entries) >= 1000:
            raise ApiError(400, "RESOURCE_LIMIT_EXCEEDED", f"Scope {scope} already holds 1000 secrets.")
        entries[key] = value
        self._secret_times[(scope, key)] = _ms(self._clock())
        return Response(body={})

    @staticmethod
    def _secret_value(body: dict[str, Any]) -> str | bytes:
        has_string, has_bytes = body.get("string_value") is not None, body.get("bytes_value") is not None
        if has_string == has_bytes:
            raise _bad("Exactly one of string_value and bytes_value must be given.")
        if has_string:
            return str(body["string_value"])
        try:
            return base64.b64decode(body["bytes_value"], validate=True)
        except (binascii.Error, TypeError):
            raise _bad("bytes_value must be base64.") from None

    def _create_scope(self, request: Request, caller: Principal) -> Response:
        name = _json_body(request).get("scope")
        if not name:
            raise _bad("scope is required.")
        if name in self._scopes:
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Scope {name} already exists!")
        self._scopes[name] = {}
        return Response(body={})

    def _list_scopes(self, request: Request, caller: Principal) -> Response:
        scopes = [{"name": name, "backend_type": "DATABRICKS"} for name in self._scopes]
        return Response(body={"scopes": scopes} if scopes else {})

    def _list_secrets(self, request: Request, caller: Principal) -> Response:
        scope = request.arg("scope")
        if scope not in self._scopes:
            raise _not_found(f"Scope {scope} does not exist!")
        keys = [{"key": key, "last_updated_timestamp": self._secret_times[(scope, key)]}
                for key in self._scopes[scope]]
        return Response(body={"secrets": keys} if keys else {})

    # workspace-conf -----------------------------------------------------------------------------
    def _get_conf(self, request: Request, caller: Principal) -> Response:
        keys = [k for k in (request.arg("keys") or "").split(",") if k]
        if not keys:
            raise _bad("keys is required, e.g. keys=maxTokenLifetimeDays,enableTokensConfig.")
        unknown = [k for k in keys if k not in self._conf]
        if unknown:
            raise _bad(f"Invalid keys: {unknown}.")
        return Response(body={k: self._conf[k] for k in keys})

    def _set_conf_route(self, request: Request, caller: Principal) -> Response:
        for key, value in _json_body(request).items():
            self._conf[key] = None if value is None else str(value)
        return Response(body={})

    # SQL warehouses and statements --------------------------------------------------------------
    def _warehouse_json(self, id: str) -> dict[str, Any]:
        return {"id": id, "name": f"Sandbox warehouse {id}", "state": self._warehouses[id],
                "warehouse_type": "PRO", "enable_serverless_compute": True}

    def _list_warehouses(self, request: Request, caller: Principal) -> Response:
        return Response(body={"warehouses": [self._warehouse_json(id) for id in self._warehouses]})

    def _get_warehouse(self, request: Request, caller: Principal, id: str) -> Response:
        if id not in self._warehouses:
            raise _not_found(f"Warehouse {id} does not exist.")
        return Response(body=self._warehouse_json(id))

    def _execute_statement(self, request: Request, caller: Principal) -> Response:
        body = _json_body(request)
        sql, warehouse_id = body.get("statement"), body.get("warehouse_id")
        if not sql or not warehouse_id:
            raise _bad("statement and warehouse_id are required.")
        if body.get("disposition", "INLINE") != "INLINE" or body.get("format", "JSON_ARRAY") != "JSON_ARRAY":
            raise _bad("The sandbox emulates only disposition INLINE with format JSON_ARRAY.")
        wait = _wait_seconds(body.get("wait_timeout", "10s"))
        state = self._warehouses.get(warehouse_id)
        if state is None or state in ("DELETED", "DELETING"):
            raise _not_found(f"Warehouse {warehouse_id} does not exist.")  # *unconfirmed* status/code
        statement = self._run_statement(sql, body)
        self._statements[statement.id] = statement
        if state != "RUNNING":  # the warehouse starts; the statement waits for it
            self._warehouses[warehouse_id] = "RUNNING"
            if wait > 0 and body.get("on_wait_timeout") == "CANCEL":
                statement.state = "CANCELED"
                return Response(body=self._statement_json(statement))
            return Response(body=self._statement_json(statement, pending=True))
        if wait == 0:
            return Response(body=self._statement_json(statement, pending=True))
        return Response(body=self._statement_json(statement))

    def _run_statement(self, sql: str, body: dict[str, Any]) -> Statement:
        statement = Statement(id=str(uuid.uuid4()), state="SUCCEEDED")
        try:
            params = _statement_params(body.get("parameters"))
            query = SqlParser(sql).parse()
            rows = run_query(query, self._audit, params)
        except SqlError as error:
            statement.state = "FAILED"
            statement.error = {"error_code": "BAD_REQUEST", "message": str(error)}
            statement.sql_state = error.sql_state
            return statement
        row_limit = body.get("row_limit")
        if row_limit is not None and len(rows) > int(row_limit):
            rows, statement.truncated = rows[: int(row_limit)], True
        statement.columns = [{"name": item.output_name, "type_name": item.type_name,
                              "type_text": item.type_text, "position": index}
                             for index, item in enumerate(query.items)]
        types = [item.type_name for item in query.items]
        rendered = [[render_value(value, kind) for value, kind in zip(row, types, strict=True)]
                    for row in rows]
        sizes = [len(json.dumps(row, separators=(",", ":")).encode()) for row in rendered]
        byte_limit = body.get("byte_limit")
        if byte_limit is not None and sum(sizes) > int(byte_limit):
            # "If the result was truncated due to the byte limit, then `truncated` in the response
            # is set to true" (databricks-sdk `service/sql.py`, execute_statement's byte_limit)
            kept, total = 0, 0
            while kept < len(sizes) and total + sizes[kept] <= int(byte_limit):
                total, kept = total + sizes[kept], kept + 1
            rendered, sizes, statement.truncated = rendered[:kept], sizes[:kept], True
        if sum(sizes) > self.inline_byte_limit:
            statement.state = "FAILED"
            statement.error = {"error_code": "BAD_REQUEST",
                               "message": INLINE_LIMIT_MESSAGE.format(limit=self.inline_byte_limit)}
            return statement
        size = max(self.chunk_rows, 1)
        statement.chunks = [rendered[i:i + size] for i in range(0, len(rendered), size)]
        return statement

    def _statement(self, statement_id: str) -> Statement:
        statement = self._statements.get(statement_id)
        if statement is None:
            raise _not_found(f"Statement {statement_id} does not exist.")
        return statement

    def _statement_json(self, statement: Statement, pending: bool = False) -> dict[str, Any]:
        if pending:
            return {"statement_id": statement.id, "status": {"state": "PENDING"}}
        body: dict[str, Any] = {"statement_id": statement.id, "status": {"state": statement.state}}
        if statement.state == "FAILED":
            body["status"]["error"] = statement.error
            if statement.sql_state:
                body["status"]["sql_state"] = statement.sql_state
        if statement.state != "SUCCEEDED":
            return body
        offsets = [sum(len(c) for c in statement.chunks[:i]) for i in range(len(statement.chunks))]
        body["manifest"] = {
            "format": "JSON_ARRAY",
            "schema": {"column_count": len(statement.columns), "columns": statement.columns},
            "total_chunk_count": len(statement.chunks),
            "chunks": [{"chunk_index": i, "row_offset": offsets[i], "row_count": len(c)}
                       for i, c in enumerate(statement.chunks)],
            "total_row_count": statement.row_count,
            "truncated": statement.truncated,
        }
        body["result"] = self._chunk_json(statement, 0) if statement.chunks else \
            {"chunk_index": 0, "row_offset": 0, "row_count": 0}
        return body

    def _chunk_json(self, statement: Statement, index: int) -> dict[str, Any]:
        chunk = statement.chunks[index]
        data = {"chunk_index": index, "row_offset": sum(len(c) for c in statement.chunks[:index]),
                "row_count": len(chunk), "data_array": chunk}
        if index + 1 < len(statement.chunks):
            data["next_chunk_index"] = index + 1
            link = f"/api/2.0/sql/statements/{statement.id}/result/chunks/{index + 1}"
            data["next_chunk_internal_link"] = link
        return data

    def _get_statement(self, request: Request, caller: Principal, statement_id: str) -> Response:
        return Response(body=self._statement_json(self._statement(statement_id)))

    def _cancel_statement(self, request: Request, caller: Principal, statement_id: str) -> Response:
        self._statement(statement_id).state = "CANCELED"
        return Response(body={})

    def _get_chunk(self, request: Request, caller: Principal, statement_id: str, index: str) -> Response:
        statement = self._statement(statement_id)
        if statement.state != "SUCCEEDED":
            raise ApiError(400, "INVALID_STATE",
                           f"Statement {statement_id} is {statement.state}; it has no result.")
        if int(index) >= len(statement.chunks):
            raise _bad(f"Chunk index {index} is out of range: the result has {len(statement.chunks)} chunks.")
        return Response(body=self._chunk_json(statement, int(index)))


# ------------------------------------------------------------------------------------------------
# helpers for the handlers


def _json_body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    body = request.json
    if body is None:
        try:
            body = json.loads(request.body)
        except ValueError:
            raise ApiError(400, "MALFORMED_REQUEST", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "The request body must be a JSON object.")
    return body


def _token_json(info: Mapping[str, Any]) -> dict[str, Any]:
    """TokenInfo as served: unset fields and empty lists are left out, like Databricks does."""
    return {k: copy.copy(v) for k, v in info.items() if v is not None and v != []}


def _public_token_json(info: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("token_id", "comment", "creation_time", "expiry_time", "scopes", "inferred_scopes",
            "backfill_scopes", "autoscope_state")
    return {k: v for k, v in _token_json(info).items() if k in keep}


def _statement_params(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, list) or not all(isinstance(p, dict) and p.get("name") for p in raw):
        raise ApiError(400, "INVALID_PARAMETER_VALUE", "parameters must be a list of {name, value, type}.")
    return {p["name"]: p.get("value") for p in raw}


def _wait_seconds(wait_timeout: Any) -> int:
    match = re.fullmatch(r"(\d+)s", str(wait_timeout))
    seconds = int(match.group(1)) if match else -1
    if seconds != 0 and not 5 <= seconds <= 50:
        raise _bad(f"wait_timeout must be 0s or between 5s and 50s, got {wait_timeout!r}.")
    return seconds


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
    r'\s*(?P<attr>[A-Za-z][\w.]*)\s+(?P<op>eq|ne|co|sw|ew|pr)\b'
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
                raise ScimError(400, f"Invalid filter {text!r} near position {pos}: the sandbox understands "
                                "attr eq|ne|co|sw|ew|pr value, joined by and/or.", "invalidFilter")
            value = match.group("value")
            if match.group("op").lower() != "pr" and value is None:
                raise ScimError(400, f"Invalid filter {text!r}: {match.group('op')} needs a value.",
                                "invalidFilter")
            self.alternatives[-1].append((match.group("attr"), match.group("op").lower(),
                                          json.loads(value) if value is not None else None))
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
        return {"eq": actual == expected, "ne": actual != expected, "co": expected in actual,
                "sw": actual.startswith(expected), "ew": actual.endswith(expected)}[op]
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    return False
