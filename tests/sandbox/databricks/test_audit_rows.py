"""The audit rows a token's use writes (`bot.sandbox.databricks.audit_rows`), read back through
the real SDK's statement execution: the `tokenLogin` and the call share a session, carry the
client's user agent and address, and a rejected token is a 403 login without a session."""

from __future__ import annotations

from datetime import UTC, datetime

from databricks.sdk import WorkspaceClient

from bot.sandbox.databricks import DatabricksSandbox
from bot.sandbox.databricks.audit_rows import USER_AGENTS, failed_logins, use
from tests.sandbox.databricks.test_statements import all_rows, execute

WHEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def test_a_use_is_a_login_and_a_call_in_one_session_from_one_client(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    sandbox.add_audit_rows(
        use(WHEN, "tok-a", "alice@example.com", "jobs", "runNow", agent=USER_AGENTS["power_bi"], ip="20.190.5.10")
    )

    rows = all_rows(
        client,
        execute(
            client,
            "SELECT action_name, session_id, user_agent, source_ip_address, response.statusCode, "
            "request_params['tokenId'] FROM system.access.audit ORDER BY action_name",
        ),
    )

    (call, login) = rows
    assert [call[0], login[0]] == ["runNow", "tokenLogin"]
    assert call[1] == login[1] and call[1]
    assert call[2] == login[2] == USER_AGENTS["power_bi"]
    assert call[3] == login[3] == "20.190.5.10"
    assert call[4] == login[4] == "200"
    assert login[5] == "tok-a" and call[5] is None


def test_a_rejected_token_logs_403_logins_without_a_session(
    sandbox: DatabricksSandbox, client: WorkspaceClient
) -> None:
    sandbox.add_audit_rows(failed_logins(WHEN, "tok-a", "alice@example.com", 3, ip="198.51.100.9"))

    rows = all_rows(
        client,
        execute(
            client,
            "SELECT session_id, response.statusCode, response.errorMessage, count(*) FROM system.access.audit "
            "GROUP BY session_id, response.statusCode, response.errorMessage",
        ),
    )

    assert rows == [[None, "403", "Invalid access token.", "3"]]
