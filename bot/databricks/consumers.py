"""Who uses each token: `system.access.audit` aggregated by the warehouse (GROUP BY), read through
`AuditReader`'s statement runner (waits, chunks, errors: bot/databricks/audit.py).

Four parameterised statements, each bounded:

- uses: the events of each token's login sessions (`LOGIN_SESSIONS_SQL`: the session its
  `tokenLogin` opened, as the usage statement ties them), one row per token, user agent and source
  address over the lookback window. The result grows with the distinct (token, agent, address),
  not with the events;
- daily: the same per day, over the short recent window only (for "several clients in one day");
- failed logins: `accounts` `tokenLogin` events answered 401 or 403 that name a token, per token,
  day, address and agent, over the recent window;
- coverage: the newest event and the number of events in the window, to tell a quiet token from
  a log that is empty or behind.

More than `max_groups` rows in any of them is a GatewayError (nothing is cut short: a partial list
of consumers would hide one). `response.statusCode` is the audit table's field name (Databricks,
"Audit log system table reference": `{"statusCode": 200, "errorMessage": null, "result": null}`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from bot.databricks.audit import LOGIN_SESSIONS_SQL, AuditReader, _count, _parse_sql_time, _sql_time
from bot.databricks.records import AgentUse, AuditConsumers, FailedLogins, GatewayError

CONSUMER_MAX_GROUPS = 100_000

USES_SQL = """
SELECT t.token_id, a.user_agent, a.source_ip_address,
       count(*) AS calls, min(a.event_time) AS first_seen, max(a.event_time) AS last_seen
FROM system.access.audit AS a
JOIN ({sessions}) AS t ON a.session_id = t.session_id
WHERE a.workspace_id = :workspace_id AND a.event_time >= :since
GROUP BY t.token_id, a.user_agent, a.source_ip_address
ORDER BY token_id, last_seen DESC
LIMIT {limit}
""".strip().replace("{sessions}", LOGIN_SESSIONS_SQL.strip())

DAILY_SQL = """
SELECT t.token_id, a.event_date AS event_day, a.user_agent, a.source_ip_address,
       count(*) AS calls, min(a.event_time) AS first_seen, max(a.event_time) AS last_seen
FROM system.access.audit AS a
JOIN ({sessions}) AS t ON a.session_id = t.session_id
WHERE a.workspace_id = :workspace_id AND a.event_time >= :since
GROUP BY t.token_id, a.event_date, a.user_agent, a.source_ip_address
ORDER BY token_id, event_day
LIMIT {limit}
""".strip().replace("{sessions}", LOGIN_SESSIONS_SQL.strip())

FAILED_LOGINS_SQL = """
SELECT request_params['tokenId'] AS token_id, event_date AS event_day, source_ip_address, user_agent,
       count(*) AS failures, min(event_time) AS first_seen, max(event_time) AS last_seen
FROM system.access.audit
WHERE workspace_id = :workspace_id AND event_time >= :since
  AND service_name = 'accounts' AND action_name = 'tokenLogin'
  AND response.statusCode IN (401, 403) AND request_params['tokenId'] IS NOT NULL
GROUP BY request_params['tokenId'], event_date, source_ip_address, user_agent
ORDER BY token_id, event_day
LIMIT {limit}
""".strip()

COVERAGE_SQL = """
SELECT max(event_time) AS through, count(*) AS events
FROM system.access.audit
WHERE workspace_id = :workspace_id AND event_time >= :since
""".strip()


def read_consumers(
    reader: AuditReader,
    warehouse_id: str,
    since: datetime,
    recent_since: datetime,
    *,
    max_wait_seconds: float,
    max_groups: int = CONSUMER_MAX_GROUPS,
) -> AuditConsumers:
    """The four statements of the module docstring, run on the warehouse in turn."""
    workspace_id = str(reader._call("read the workspace id", reader._client.get_workspace_id))

    def run(what: str, sql: str, start: datetime) -> list[list[str | None]]:
        parameters = [
            {"name": "workspace_id", "value": workspace_id, "type": "STRING"},
            {"name": "since", "value": _sql_time(start), "type": "TIMESTAMP"},
        ]
        action = f"read {what} (audit log)"
        rows = reader._statement(
            warehouse_id, sql.format(limit=int(max_groups) + 1), parameters, max_wait_seconds, action
        )
        if len(rows) > max_groups:
            raise GatewayError(
                "other",
                f"{action} (SQL warehouse {warehouse_id}): more than {max_groups} groups; "
                "shorten policy.usage_lookback_days",
            )
        return rows

    [coverage] = run("the audit log's coverage", COVERAGE_SQL, since) or [[None, None]]
    uses = run("who uses each token", USES_SQL, since)
    daily = run("who used each token per day", DAILY_SQL, recent_since)
    failed = run("failed token logins", FAILED_LOGINS_SQL, recent_since)
    return AuditConsumers(
        workspace_id=workspace_id,
        since=since,
        recent_since=recent_since,
        through=_parse_sql_time(coverage[0]),
        events=_count(coverage[1]),
        uses=tuple(_use(row) for row in uses if row and row[0]),
        daily=tuple(_daily(row) for row in daily if row and row[0]),
        failed_logins=tuple(_failed(row) for row in failed if row and row[0]),
    )


def _use(row: Sequence[str | None]) -> AgentUse:
    token_id, agent, address, calls, first_seen, last_seen = row
    return AgentUse(
        str(token_id), agent, address, _count(calls), _parse_sql_time(first_seen), _parse_sql_time(last_seen)
    )


def _daily(row: Sequence[str | None]) -> AgentUse:
    token_id, day, agent, address, calls, first_seen, last_seen = row
    return AgentUse(
        str(token_id),
        agent,
        address,
        _count(calls),
        _parse_sql_time(first_seen),
        _parse_sql_time(last_seen),
        day=_day(day),
    )


def _failed(row: Sequence[str | None]) -> FailedLogins:
    token_id, day, address, agent, failures, first_seen, last_seen = row
    return FailedLogins(
        str(token_id),
        _day(day),
        address,
        agent,
        _count(failures),
        _parse_sql_time(first_seen),
        _parse_sql_time(last_seen),
    )


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
