"""The sandbox's SQL subset (sql/): predicates, joins and the errors the parser names, without a
server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.sandbox.databricks.sql import SqlError, SqlParser, normalise_audit_row, run_query


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("response.statusCode = '403'", ["e2"]),
        ("response.statusCode <> 403", ["e1"]),
        ("user_agent IS NULL", ["e2"]),
        ("event_id NOT IN ('e1', NULL)", []),
        ("event_date = '2025-03-02'", ["e2"]),
        ("event_time < '2025-03-02'", ["e1"]),
    ],
)
def test_where_predicates_follow_sql_semantics(where: str, expected: list[str]) -> None:
    rows = [
        {
            "event_id": "e1",
            "event_time": datetime(2025, 3, 1, tzinfo=UTC),
            "user_agent": "curl",
            "response": {"statusCode": 200},
        },
        {"event_id": "e2", "event_time": datetime(2025, 3, 2, tzinfo=UTC), "response": {"statusCode": 403}},
    ]
    table = [normalise_audit_row(row, workspace_id="1", account_id="acc") for row in rows]
    query = SqlParser(f"SELECT event_id FROM system.access.audit WHERE {where}").parse()  # noqa: S608 - test SQL

    assert [r[0] for r in run_query(query, table, {})] == expected


def test_parser_names_the_unsupported_construct() -> None:
    with pytest.raises(SqlError, match=r"HAVING on something other than an aggregate is not supported"):
        SqlParser(
            "SELECT action_name, count(*) FROM system.access.audit GROUP BY action_name HAVING action_name = 'x'"
        ).parse()


def test_a_left_join_on_a_grouped_sub_query_ties_each_event_to_its_session_token() -> None:
    def event(session: str | None, action: str, token: str | None = None) -> dict[str, Any]:
        params = {"tokenId": token} if token else None
        return {"event_time": datetime(2025, 3, 1, tzinfo=UTC), "session_id": session, "action_name": action,
                "service_name": "accounts" if token else "jobs", "request_params": params}

    rows = [
        event("s1", "tokenLogin", "tok-a"), event("s1", "runNow"), event("s1", "runNow"),
        event("s2", "tokenLogin", "tok-a"), event("s2", "tokenLogin", "tok-b"), event("s2", "get"),
        event("s3", "list"), event(None, "list"),
    ]
    table = [normalise_audit_row(row, workspace_id="1", account_id="acc") for row in rows]
    query = SqlParser(
        "SELECT a.action_name, t.token_id, count(*) AS calls "
        "FROM system.access.audit AS a LEFT JOIN ("
        "  SELECT session_id, min(request_params['tokenId']) AS token_id FROM system.access.audit"
        "  WHERE action_name = 'tokenLogin' GROUP BY session_id"
        "  HAVING count(DISTINCT request_params['tokenId']) = 1"
        ") t ON a.session_id = t.session_id "
        "WHERE a.action_name != 'tokenLogin' GROUP BY a.action_name, t.token_id ORDER BY action_name"
    ).parse()

    assert run_query(query, table, {}) == [["get", None, 1], ["list", None, 2], ["runNow", "tok-a", 2]]
