"""Observed usage: `system.access.audit` read through the Statement Execution API.

One parameterised statement aggregates a workspace's audit events on a SQL warehouse; it is run to
the end (waiting for a stopped warehouse, reading every chunk) and its rows become `AuditCall`s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import DatabricksError

from bot.databricks.records import AuditCall, AuditUsage, GatewayError

logger = logging.getLogger(__name__)

STATEMENTS_PATH = "/api/2.0/sql/statements"
STATEMENT_MAX_WAIT = 600.0  # seconds per statement: a stopped warehouse starts within minutes
# Groups the audit statement may return: one per identity, token, day, service and action. At about
# 150 bytes a group this stays well under the 25 MiB INLINE limit; more is refused, not cut short.
AUDIT_MAX_GROUPS = 100_000

# The gateway's `_call`: runs a function, raising SDK and network failures as GatewayErrors (errors.py).
Call = Callable[[str, Callable[[], Any]], Any]


class AuditReader:
    """Reads the audit log of one workspace, through the gateway's client and error translation."""

    def __init__(self, client: WorkspaceClient, call: Call, workspace: str) -> None:
        self._client = client
        self._call = call
        self.name = workspace

    def usage(
        self,
        warehouse_id: str,
        since: datetime,
        *,
        max_wait_seconds: float = STATEMENT_MAX_WAIT,
        max_groups: int = AUDIT_MAX_GROUPS,
    ) -> AuditUsage:
        """This workspace's audit events since `since`, aggregated by the warehouse into one row
        per identity, token (through the session its `tokenLogin` opened), day, service and
        action: the result grows with the days and services used, not with the events, so a log
        of millions of rows comes back in a few chunks.

        One parameterised statement. A stopped warehouse starts and is waited for up to
        `max_wait_seconds`; a missing warehouse, a failed statement (such as a result over the
        INLINE limit), more than `max_groups` groups or the wait running out is a GatewayError
        that names the warehouse and what to do."""
        workspace_id = str(self._call("read the workspace id", self._client.get_workspace_id))
        parameters = [
            {"name": "workspace_id", "value": workspace_id, "type": "STRING"},
            {"name": "since", "value": _sql_time(since), "type": "TIMESTAMP"},
        ]
        action = "read API calls (audit log)"
        sql = AUDIT_CALLS_SQL.format(limit=int(max_groups) + 1)
        rows = self._statement(warehouse_id, sql, parameters, max_wait_seconds, action)
        if len(rows) > max_groups:
            raise GatewayError(
                "other",
                f"{action} (SQL warehouse {warehouse_id}): more than {max_groups} groups of audit events "
                "(identity, token, day, service, action); shorten policy.usage_lookback_days",
            )
        return AuditUsage(
            workspace_id=workspace_id,
            since=since,
            calls=tuple(_audit_call(row) for row in rows if row and row[3]),
        )

    def _statement(
        self,
        warehouse_id: str,
        sql: str,
        parameters: list[dict[str, str]],
        max_wait_seconds: float,
        action: str,
    ) -> list[list[str | None]]:
        """Run one statement to the end and return every row of every chunk."""
        action = f"{action} (SQL warehouse {warehouse_id})"
        body = {
            "statement": sql,
            "warehouse_id": warehouse_id,
            "parameters": parameters,
            "wait_timeout": f"{int(min(30, max(5, max_wait_seconds)))}s",
            "on_wait_timeout": "CONTINUE",
            "format": "JSON_ARRAY",
            "disposition": "INLINE",
        }
        do = self._client.api_client.do
        try:
            answer = self._call(action, lambda: do("POST", STATEMENTS_PATH, body=body)) or {}
        except GatewayError as error:
            if error.kind == "not_found":
                raise GatewayError(
                    "not_found",
                    f"{action}: the warehouse does not exist ({error.message}); "
                    f"check audit_warehouse_id of workspace '{self.name}'",
                ) from None
            raise
        statement_id = answer.get("statement_id")
        started, pause = time.monotonic(), 0.2
        while _state(answer) in ("PENDING", "RUNNING"):
            if time.monotonic() - started > max_wait_seconds:
                self._cancel_quietly(statement_id)
                raise GatewayError(
                    "timeout",
                    f"{action}: no result within {max_wait_seconds:g} s (the warehouse may be stopped "
                    "and starting); start it or let it auto-start, then run `tokenbot usage refresh`",
                )
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
            answer = self._call(action, lambda: do("GET", f"{STATEMENTS_PATH}/{statement_id}")) or {}
        state = _state(answer)
        if state != "SUCCEEDED":
            error = (answer.get("status") or {}).get("error") or {}
            detail = error.get("message") or error.get("error_code") or "no reason given"
            ended = state or "without a state"
            hint = ""
            if "inline byte limit" in str(detail).lower():  # Databricks' 25 MiB INLINE cap
                hint = "; shorten policy.usage_lookback_days so that the audit groups fit"
            raise GatewayError("other", f"{action}: the statement ended {ended}: {detail}{hint}")
        result = answer.get("result") or {}
        rows = list(result.get("data_array") or [])
        next_chunk = result.get("next_chunk_index")
        while next_chunk is not None:
            chunk_path = f"{STATEMENTS_PATH}/{statement_id}/result/chunks/{int(next_chunk)}"
            chunk = self._call(action, lambda path=chunk_path: do("GET", path)) or {}
            rows.extend(chunk.get("data_array") or [])
            next_chunk = chunk.get("next_chunk_index")
        manifest = answer.get("manifest") or {}
        if manifest.get("truncated"):
            logger.warning("workspace %s: %s: the result was truncated by the warehouse", self.name, action)
        expected = manifest.get("total_row_count")
        if expected is not None and int(expected) != len(rows):
            raise GatewayError(
                "other", f"{action}: read {len(rows)} rows of the {expected} the warehouse announced"
            )
        return rows

    def _cancel_quietly(self, statement_id: str | None) -> None:
        if not statement_id:
            return
        try:
            self._client.api_client.do("POST", f"{STATEMENTS_PATH}/{statement_id}/cancel")
        except (DatabricksError, requests.RequestException, OSError) as error:
            logger.warning("workspace %s: could not cancel statement %s: %s", self.name, statement_id, error)


# ---------------------------------------------------------------------------------------------
# the statement (the sandbox's SQL subset is enough: see bot/sandbox/databricks/sql/__init__.py)

# The token of a session is the one its `tokenLogin` events name, when they name exactly one; every
# event is grouped with that token (or none) by day, service and action. `{limit}` is the bound
# plus one (an int of ours, never user input), to tell "exactly the bound" from "more".
LOGIN_SESSIONS_SQL = """
    SELECT session_id, min(request_params['tokenId']) AS token_id
    FROM system.access.audit
    WHERE workspace_id = :workspace_id AND event_time >= :since
      AND service_name = 'accounts' AND action_name = 'tokenLogin'
      AND request_params['tokenId'] IS NOT NULL AND session_id IS NOT NULL
    GROUP BY session_id
    HAVING count(DISTINCT request_params['tokenId']) = 1
"""

AUDIT_CALLS_SQL = """
SELECT a.user_identity.email AS identity, t.token_id, a.event_date AS event_day,
       a.service_name, a.action_name,
       count(*) AS calls, min(a.event_time) AS first_seen, max(a.event_time) AS last_seen
FROM system.access.audit AS a
LEFT JOIN ({sessions}) AS t ON a.session_id = t.session_id
WHERE a.workspace_id = :workspace_id AND a.event_time >= :since
GROUP BY a.user_identity.email, t.token_id, a.event_date, a.service_name, a.action_name
ORDER BY event_day, identity, token_id, service_name, action_name
LIMIT {limit}
""".strip().replace("{sessions}", LOGIN_SESSIONS_SQL.strip())


def _state(answer: Mapping[str, Any]) -> str | None:
    return (answer.get("status") or {}).get("state")


def _sql_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_sql_time(text: str | None) -> datetime | None:
    if not text:
        return None
    text = text.strip().replace(" ", "T", 1)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _count(text: str | None) -> int:
    return int(text) if text else 0


def _audit_call(row: Sequence[str | None]) -> AuditCall:
    identity, token_id, day, service_name, action_name, calls, first_seen, last_seen = row
    return AuditCall(
        identity=identity or None,
        token_id=token_id or None,
        day=date.fromisoformat(day) if day else None,
        service_name=str(service_name),
        action_name=action_name or None,
        calls=_count(calls),
        first_seen=_parse_sql_time(first_seen),
        last_seen=_parse_sql_time(last_seen),
    )
