"""Statement execution in the sandbox (statements.py): parameters, chunks, row and byte limits,
failed statements and warehouses, through the real SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound
from databricks.sdk.service.sql import StatementParameterListItem, StatementState

from bot.sandbox.databricks import DatabricksSandbox
from tests.support.databricks_sandbox import WAREHOUSE, calls


def audit_row(**overrides: Any) -> dict[str, Any]:
    """A `tokenLogin` audit row, the kind that carries a token id."""
    row = {
        "event_time": datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        "service_name": "accounts",
        "action_name": "tokenLogin",
        "user_identity": {"email": "alice@example.com"},
        "request_params": {"tokenId": "tok-a", "authenticationMethod": "API_EXT_PAT_TOKEN"},
        "response": {"statusCode": 200},
        "source_ip_address": "10.0.0.1",
        "user_agent": "curl/8.0",
    }
    row.update(overrides)
    return row


def execute(client: WorkspaceClient, sql: str, **params: str):
    parameters = [StatementParameterListItem(name=k, value=v) for k, v in params.items()]
    return client.statement_execution.execute_statement(
        statement=sql, warehouse_id=WAREHOUSE, parameters=parameters, wait_timeout="30s"
    )


def all_rows(client: WorkspaceClient, response) -> list[list[str | None]]:
    """Every row, following next_chunk_index as a gateway would."""
    rows, result = list(response.result.data_array or []), response.result
    while result.next_chunk_index is not None:
        result = client.statement_execution.get_statement_result_chunk_n(
            response.statement_id, result.next_chunk_index
        )
        rows.extend(result.data_array or [])
    return rows


def test_statement_with_parameters_returns_rows_over_several_chunks(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    sandbox.add_audit_rows(
        audit_row(event_time=start + timedelta(hours=n), request_params={"tokenId": f"tok-{n:02d}"})
        for n in range(10)
    )
    sandbox.add_audit_rows([audit_row(action_name="getTable", event_time=start)])

    response = execute(
        client,
        "SELECT request_params['tokenId'] AS token_id, event_time, response.statusCode "
        "FROM system.access.audit WHERE action_name = :action AND event_time >= :since "
        "ORDER BY event_time",
        action="tokenLogin",
        since="2025-03-01T02:00:00Z",
    )

    assert response.status.state == StatementState.SUCCEEDED
    assert response.manifest.total_chunk_count == 2 and response.manifest.total_row_count == 8
    assert [c.name for c in response.manifest.schema.columns] == ["token_id", "event_time", "statusCode"]
    rows = all_rows(client, response)
    assert [r[0] for r in rows] == [f"tok-{n:02d}" for n in range(2, 10)]
    assert rows[0][1:] == ["2025-03-01T02:00:00.000Z", "200"]
    assert len(calls(sandbox, f"/api/2.0/sql/statements/{response.statement_id}/result/chunks/")) == 1


INLINE_LIMIT_MESSAGE = (
    "Inline byte limit exceeded. Statements executed with disposition=INLINE can have a result size "
    "of at most {limit} bytes. Please execute the statement with disposition=EXTERNAL_LINKS if you want "
    "to download the full result."
)


def test_a_result_over_the_inline_limit_fails_as_databricks_does(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    assert sandbox.inline_byte_limit == 25 * 1024 * 1024
    sandbox.inline_byte_limit = 2000
    start = datetime(2025, 3, 1, tzinfo=UTC)
    sandbox.add_audit_rows(audit_row(event_time=start + timedelta(minutes=n)) for n in range(100))

    raw_rows = execute(client, "SELECT event_time, user_identity.email, user_agent FROM system.access.audit")
    per_day = execute(client, "SELECT event_date, count(*) FROM system.access.audit GROUP BY event_date")

    assert raw_rows.status.state == StatementState.FAILED
    assert raw_rows.status.error.error_code.value == "BAD_REQUEST"
    assert raw_rows.status.error.message == INLINE_LIMIT_MESSAGE.format(limit=2000)
    assert raw_rows.manifest is None and raw_rows.result is None
    assert per_day.status.state == StatementState.SUCCEEDED
    assert per_day.result.data_array == [["2025-03-01", "100"]]


def test_byte_limit_truncates_instead_of_failing(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.inline_byte_limit = 2000
    start = datetime(2025, 3, 1, tzinfo=UTC)
    sandbox.add_audit_rows(audit_row(event_time=start + timedelta(minutes=n)) for n in range(100))

    response = client.statement_execution.execute_statement(
        statement="SELECT event_time FROM system.access.audit ORDER BY event_time",
        warehouse_id=WAREHOUSE, wait_timeout="30s", byte_limit=500,
    )

    assert response.status.state == StatementState.SUCCEEDED
    assert response.manifest.truncated is True
    rows = all_rows(client, response)
    assert 0 < len(rows) == response.manifest.total_row_count < 100
    assert rows[0] == ["2025-03-01T00:00:00.000Z"]


def test_group_by_with_count_and_max(sandbox: DatabricksSandbox, client: WorkspaceClient) -> None:
    sandbox.add_audit_rows(
        [
            audit_row(event_time=datetime(2025, 3, 1, tzinfo=UTC)),
            audit_row(event_time=datetime(2025, 3, 5, tzinfo=UTC)),
            audit_row(request_params={"tokenId": "tok-b"}, user_identity={"email": "bob@example.com"}),
            audit_row(request_params={"authenticationMethod": "API_INT_PAT_TOKEN"}),
        ]
    )

    response = execute(
        client,
        "SELECT request_params.tokenId, user_identity.email, count(*) AS uses, "
        "max(event_time) FROM system.access.audit "
        "WHERE request_params.tokenId IS NOT NULL AND service_name IN ('accounts') "
        "GROUP BY request_params.tokenId, user_identity.email ORDER BY uses DESC",
    )

    assert [c.name for c in response.manifest.schema.columns] == [
        "tokenId",
        "email",
        "uses",
        "max(event_time)",
    ]
    assert response.result.data_array == [
        ["tok-a", "alice@example.com", "2", "2025-03-05T00:00:00.000Z"],
        ["tok-b", "bob@example.com", "1", "2025-03-01T12:00:00.000Z"],
    ]


def test_empty_result_has_no_data_array(client: WorkspaceClient) -> None:
    response = execute(client, "SELECT event_id FROM system.access.audit WHERE action_name = 'none'")

    assert response.status.state == StatementState.SUCCEEDED
    assert response.manifest.total_row_count == 0 and response.result.data_array is None


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        (
            "SELECT event_id FROM system.access.audit WHERE action_name = 'a' OR action_name = 'b'",
            "OR at position",
        ),
        ("SELECT lower(action_name) FROM system.access.audit", "lower()"),
        ("SELECT * FROM system.access.audit", "SELECT *"),
        ("SELECT DISTINCT action_name FROM system.access.audit", "DISTINCT"),
        ("SELECT event_id FROM system.access.audit JOIN system.access.audit", "JOIN of a table"),
        (
            "SELECT a.event_id FROM system.access.audit a RIGHT JOIN system.access.audit b ON a.x = b.x",
            "'RIGHT'",
        ),
        ("SELECT b.event_id FROM system.access.audit a", "neither a table alias nor a column"),
        (
            "SELECT session_id FROM system.access.audit LEFT JOIN "
            "(SELECT session_id FROM system.access.audit) t ON session_id = t.session_id",
            "AMBIGUOUS_REFERENCE",
        ),
        ("SELECT event_id FROM system.billing.usage", "TABLE_OR_VIEW_NOT_FOUND"),
        ("SELECT no_such_column FROM system.access.audit", "UNRESOLVED_COLUMN"),
        ("SELECT event_id FROM system.access.audit WHERE event_time > :since", "UNBOUND_SQL_PARAMETER"),
        ("SELECT action_name, count(*) FROM system.access.audit", "MISSING_AGGREGATION"),
        ("SELECT event_id FROM system.access.audit WHERE event_date >= current_date()", "current_date"),
    ],
)
def test_unsupported_or_wrong_sql_fails_with_a_message(client: WorkspaceClient, sql: str, named: str) -> None:
    response = execute(client, sql)

    assert response.status.state == StatementState.FAILED
    assert named in response.status.error.message
    assert response.result is None


def test_unknown_warehouse_is_not_found(client: WorkspaceClient) -> None:
    with pytest.raises(NotFound):
        client.statement_execution.execute_statement(
            statement="SELECT event_id FROM system.access.audit", warehouse_id="nope"
        )


def test_stopped_warehouse_answers_pending_then_succeeds(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    sandbox.add_warehouse("cold", state="STOPPED")
    sandbox.add_audit_rows([audit_row()])

    pending = client.statement_execution.execute_statement(
        statement="SELECT count(*) FROM system.access.audit", warehouse_id="cold", wait_timeout="5s"
    )
    done = client.statement_execution.get_statement(pending.statement_id)

    assert pending.status.state == StatementState.PENDING
    assert (done.status.state, done.result.data_array) == (StatementState.SUCCEEDED, [["1"]])
