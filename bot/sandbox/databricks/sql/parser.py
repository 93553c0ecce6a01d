"""A recursive-descent parser for the sandbox's SQL subset (see the package docstring): statement
text to a `Query`, failing with Databricks' error classes where Spark would, and naming what the
sandbox does not support otherwise."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.databricks.sql.syntax import (
    AUDIT_COLUMNS,
    STRUCT_FIELDS,
    ColumnRef,
    Having,
    Join,
    JoinedRef,
    Operand,
    Predicate,
    Query,
    SelectItem,
    SqlError,
    check_grouping,
    unsupported,
)

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
_KEYWORDS = set(
    "select from where and or not in is null group by order limit asc desc as having join union distinct "
    "true false on left right inner outer full cross".split()
)


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
            raise unsupported(f"the character {sql[pos]!r} at position {pos}")
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
        if (
            token.word() in ("or", "not", "join", "union", "distinct", "on", "right", "full", "cross")
            or token.text == "("
        ):
            raise unsupported(f"{token.text.upper()!r} at position {token.pos}")
        raise SqlError(
            "PARSE_SYNTAX_ERROR",
            f"Syntax error at or near {token.text!r} (position {token.pos}): {expected}.",
            "42601",
        )

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
                raise unsupported("SELECT DISTINCT")
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
            check_grouping(query)
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
            raise unsupported(f"a sub-query in FROM (position {self._peek().pos}); only in a JOIN")
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
            raise unsupported(
                f"JOIN of a table at position {self._peek().pos if self._peek() else 'end'}; "
                "the sandbox joins only a sub-query of system.access.audit"
            )
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
            raise unsupported("an ON condition other than `audit column = sub-query column`")
        if self._at_word("and", "or", "left", "inner", "join"):
            raise unsupported(f"{self._peek().text.upper()} after the ON condition (one join, one equality)")
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
                raise unsupported("HAVING on something other than an aggregate")
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
            raise unsupported("SELECT *")
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
                raise unsupported(f"the function {token.text}() at position {token.pos}")
            self.i += 2
            if self._accept_word("distinct"):
                if name != "count":
                    raise unsupported(f"{name}(DISTINCT ...)")
                ref = self._column()
                self._expect(")")
                return SelectItem("count_distinct", ref)
            if name == "count" and (self._accept("*") or self._accept_number_one()):
                self._expect(")")
                return SelectItem("count_star", None)
            ref = self._column()
            self._expect(")")
            if name != "count" and ref.type_name in ("MAP", "STRUCT"):
                raise unsupported(f"{name}() over a {ref.type_name} column")
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
            raise SqlError(
                "TABLE_OR_VIEW_NOT_FOUND",
                f"The table or view `{name}` cannot be found "
                f"(the sandbox serves only system.access.audit; position {start.pos}).",
                "42P01",
            )

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
            raise SqlError(
                "AMBIGUOUS_REFERENCE",
                f"Reference `{name}` (position {token.pos}) is ambiguous: "
                f"it is a column of the audit table and of `{joined[0]}`.",
                "42704",
            )
        if joined:
            return self._joined_column(joined[0], name, token)
        return self._audit_column(name, token)

    def _joined_column(self, alias: str, name: str, token: _Token) -> JoinedRef:
        item = self._joined[alias].get(name.lower())
        if item is None:
            raise SqlError(
                "UNRESOLVED_COLUMN",
                f"A column with name `{alias}.{name}` (position {token.pos}) "
                f"cannot be resolved; `{alias}` has: {', '.join(self._joined[alias])}.",
                "42703",
            )
        return JoinedRef(alias, item.output_name, item.type_name, item.type_text)

    def _audit_column(self, name: str, token: _Token) -> ColumnRef:
        column = next((c for c in AUDIT_COLUMNS if c.lower() == name.lower()), None)
        if column is None and self._peek() is not None and self._peek().text == ".":
            raise SqlError(
                "UNRESOLVED_COLUMN",
                f"`{name}` (position {token.pos}) is neither a table alias nor a column of the audit table.",
                "42703",
            )
        if column is None:
            raise SqlError(
                "UNRESOLVED_COLUMN",
                f"A column with name `{name}` (position {token.pos}) cannot "
                f"be resolved; the audit table has: {', '.join(AUDIT_COLUMNS)}.",
                "42703",
            )
        kind = AUDIT_COLUMNS[column]
        if kind == "MAP" and self._accept("["):
            key = self._next()
            if key.kind != "string":
                raise unsupported(f"a non-literal map key at position {key.pos}")
            self._expect("]")
            return ColumnRef(column, _unquote(key.text), dotted=False)
        if not self._accept("."):
            return ColumnRef(column)
        field_name = self._identifier()
        if kind == "MAP":
            return ColumnRef(column, field_name)
        if kind != "STRUCT":
            raise SqlError(
                "INVALID_EXTRACT_BASE_FIELD_TYPE",
                f"Cannot extract a field from `{column}`, which is {kind}.",
                "42000",
            )
        field = next((f for f in STRUCT_FIELDS[column] if f.lower() == field_name.lower()), None)
        if field is None:
            raise SqlError(
                "FIELD_NOT_FOUND",
                f"No such struct field `{field_name}` in `{column}`; "
                f"it has: {', '.join(STRUCT_FIELDS[column])}.",
                "42704",
            )
        if self._peek() is not None and self._peek().text == ".":
            raise unsupported(f"nested field access at position {self._peek().pos}")
        return ColumnRef(column, field)

    def _conjunction(self) -> list[Predicate]:
        predicates = [self._predicate()]
        while self._accept_word("and"):
            predicates.append(self._predicate())
        if self._at_word("or"):
            raise unsupported(f"OR at position {self._peek().pos}")
        return predicates

    def _predicate(self) -> Predicate:
        if self._at_word("not") or (self._peek() is not None and self._peek().text == "("):
            raise unsupported(f"{self._peek().text.upper()!r} at position {self._peek().pos}")
        ref = self._column()
        if ref.type_name in ("MAP", "STRUCT"):
            raise unsupported(f"comparing the whole {ref.type_name} column `{ref.column}`")
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
            raise unsupported("positional parameters (?)")
        raise unsupported(f"the expression {token.text!r} at position {token.pos} (only :params, literals)")

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
            index = next(
                (
                    i
                    for i, item in enumerate(items)
                    if (item.kind, item.ref) == (expression.kind, expression.ref)
                ),
                None,
            )
            if index is None:
                raise unsupported(f"ORDER BY something not in the SELECT list (position {token.pos})")
        descending = self._accept_word("desc")
        if not descending:
            self._accept_word("asc")
        if self._at_word("nulls"):
            raise unsupported("NULLS FIRST/LAST")
        return index, descending

    def _integer(self) -> int:
        token = self._next()
        if token.kind != "number" or "." in token.text:
            self.i -= 1
            self._fail_here("expected an integer")
        return int(token.text)
