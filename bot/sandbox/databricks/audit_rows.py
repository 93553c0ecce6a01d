"""Audit rows as Databricks writes them when a personal access token is used, for the sandbox's
`system.access.audit` (tests and the demo seed add them with `add_audit_rows`).

Shapes (Databricks, "Audit log system table reference" and "Audit log reference", accounts
events): every request authenticated by a PAT logs an `accounts` `tokenLogin` event naming the
token (`request_params.tokenId`, `authenticationMethod` `API_PAT_TOKEN`) with the caller's
`user_agent` and `source_ip_address`; the request's own event follows in the same `session_id`.
`response` is `{statusCode, errorMessage, result}`; a rejected token is answered 403 "Invalid
access token." (APIS.md, databricks-sdk-go #873/#917), and some clients get 401.

The user agents below are each client's own format (the SDKs' `useragent` modules, the CLI's
`cli/<version>` prefix, the Simba/Databricks ODBC and JDBC drivers, Power BI's connector).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

USER_AGENTS = {
    "power_bi": "PowerBI/2.137.952.0 (Databricks-ODBC/2.8.2; Microsoft.Data.Mashup)",
    "tableau": "Tableau/2024.2 (Simba Spark ODBC Driver 2.7.7)",
    "dbt": "dbt-databricks/1.8.5 databricks-sql-connector/3.4.0",
    "airflow": "databricks-airflow/6.9.0 airflow/2.10.2 operator/DatabricksSubmitRunOperator",
    "terraform": "databricks-tf-provider/1.58.0 databricks-sdk-go/0.49.0 go/1.22.5 os/linux terraform/1.9.8",
    "cli": "cli/0.230.0 databricks-sdk-go/0.48.0 go/1.22.7 os/darwin cmd/jobs_run-now auth/pat",
    "sdk_python": "databricks-sdk-py/0.36.0 python/3.11.10 os/linux auth/pat",
    "sdk_go": "databricks-sdk-go/0.49.0 go/1.22.5 os/linux auth/pat",
    "sdk_java": "databricks-sdk-java/0.33.0 jvm/17.0.12 os/linux auth/pat",
    "jdbc": "DatabricksJDBCDriverOSS/1.0.0 Java/17.0.12",
    "odbc": "SimbaSparkODBCDriver/2.8.2 (Windows)",
    "requests": "python-requests/2.32.3",
    "curl": "curl/8.7.1",
}


def login(
    when: datetime,
    token_id: str,
    email: str,
    session: str,
    *,
    agent: str | None = None,
    ip: str | None = None,
    status: int = 200,
) -> dict[str, Any]:
    """The `tokenLogin` event of one use of a token (a failed one when `status` is 401 or 403)."""
    row: dict[str, Any] = {
        "event_time": when,
        "service_name": "accounts",
        "action_name": "tokenLogin",
        "user_identity.email": email,
        "session_id": session if status == 200 else None,
        "request_params": {"tokenId": token_id, "authenticationMethod": "API_PAT_TOKEN", "user": email},
        "response.statusCode": status,
        "user_agent": agent,
        "source_ip_address": ip,
    }
    if status != 200:
        row["response.errorMessage"] = "Invalid access token."
    return row


def use(
    when: datetime,
    token_id: str,
    email: str,
    service: str,
    action: str,
    *,
    agent: str | None = None,
    ip: str | None = None,
) -> list[dict[str, Any]]:
    """One use of a token: its login, then the call, in one session, from one client and address."""
    session = f"s-{uuid.uuid4().hex[:12]}"
    return [
        login(when, token_id, email, session, agent=agent, ip=ip),
        {
            "event_time": when + timedelta(milliseconds=250),
            "service_name": service,
            "action_name": action,
            "user_identity.email": email,
            "session_id": session,
            "response.statusCode": 200,
            "user_agent": agent,
            "source_ip_address": ip,
        },
    ]


def failed_logins(
    when: datetime, token_id: str, email: str, count: int, *, agent: str | None = None, ip: str | None = None
) -> list[dict[str, Any]]:
    """`count` rejected logins naming the token, a second apart."""
    return [
        login(when + timedelta(seconds=n), token_id, email, "", agent=agent, ip=ip, status=403)
        for n in range(count)
    ]
