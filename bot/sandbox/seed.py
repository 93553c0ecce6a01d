"""The demo's organisation: two workspaces, twelve people, two service principals, forty tokens,
each with a reason to be there. Times are relative to `now`, so the story is the same any day."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.sandbox.databricks import DatabricksSandbox, audit_rows
from bot.sandbox.slack import SlackSandbox

RUNNING = "AUTOSCOPE_STATE_RUNNING"
ADMIN_CHANNEL = "C0TOKADMIN"
DIGEST_CHANNEL = "C0TOKDIGEST"
SECRET_SCOPE, SECRET_KEY = "etl", "databricks-token"


@dataclass(frozen=True)
class Person:
    slack_id: str
    name: str
    email: str
    tz: str
    left_company: bool = False


PEOPLE = (
    Person("U0PRIYA", "Priya Shah", "priya@acme.example", "Europe/London"),
    Person("U0MARCO", "Marco Rossi", "marco@acme.example", "Europe/Rome"),
    Person("U0LENA", "Lena Vogel", "lena@acme.example", "Europe/Berlin"),
    Person("U0SAM", "Sam Okafor", "sam@acme.example", "America/New_York"),
    Person("U0AIKO", "Aiko Tanaka", "aiko@acme.example", "Asia/Tokyo"),
    Person("U0DEV", "Dev Patel", "dev@acme.example", "Asia/Kolkata"),
    Person("U0OLGA", "Olga Ivanova", "olga@acme.example", "Europe/Warsaw"),
    Person("U0TOM", "Tom Becker", "tom@acme.example", "Europe/Berlin", left_company=True),
    Person("U0NINA", "Nina Costa", "nina@acme.example", "America/Sao_Paulo"),
    Person("U0RAVI", "Ravi Kumar", "ravi@acme.example", "Asia/Singapore"),
    Person("U0EMMA", "Emma Wilson", "emma@acme.example", "Europe/Dublin"),
    Person("U0JONAS", "Jonas Berg", "jonas@acme.example", "Europe/Stockholm"),
)
ADMIN = "U0RAVI"
ETL_APP_ID = "6f1c0e2a-7d44-4b6e-9d1e-etl000000001"
REPORTING_APP_ID = "0b9a3c55-21f8-4c8e-8a77-rpt000000002"


@dataclass
class Seeded:
    """Token ids by role in the story, for the steps that act on them."""

    tokens: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (workspace, token id)
    principals: dict[str, str] = field(default_factory=dict)  # email or app id -> Databricks id

    def token(self, role: str) -> str:
        return self.tokens[role][1]


def seed(prod: DatabricksSandbox, analytics: DatabricksSandbox, slack: SlackSandbox, now: datetime) -> Seeded:
    seeded = Seeded()
    slack.add_channel(id=ADMIN_CHANNEL, name="tokenbot-admins")
    slack.add_channel(id=DIGEST_CHANNEL, name="platform-digest")
    for person in PEOPLE:
        slack.add_user(
            id=person.slack_id,
            email=person.email,
            name=person.name,
            tz=person.tz,
            deleted=person.left_company,
        )
        for sandbox in (prod, analytics):
            principal = sandbox.add_user(
                user_name=person.email, display_name=person.name, active=not person.left_company
            )
            seeded.principals[f"{sandbox.workspace_id}:{person.email}"] = principal
    etl = prod.add_service_principal(application_id=ETL_APP_ID, display_name="etl-service")
    reporting = analytics.add_service_principal(application_id=REPORTING_APP_ID, display_name="reporting-bot")
    prod.add_secret_scope(SECRET_SCOPE)

    def owner(sandbox: DatabricksSandbox, email: str) -> str:
        return seeded.principals[f"{sandbox.workspace_id}:{email}"]

    def token(role: str, sandbox: DatabricksSandbox, owner_id: str, workspace: str, **spec) -> None:
        seeded.tokens[role] = (workspace, sandbox.add_token(owner_id=owner_id, **spec))

    day = timedelta(days=1)
    # The job that breaks on quarter close: observed for 25 days since auto-scoping reached prod (the
    # demo's autoscope_rollout_date; enforcement in 5), but it calls the Jobs API once a quarter, 80 days
    # ago: auto-scoping will keep only `sql`, and narrowing would deny `jobs.runNow`.
    token(
        "rare_job",
        prod,
        owner(prod, "priya@acme.example"),
        "prod",
        comment="finance quarter-close etl",
        created_at=now - 200 * day,
        last_used_at=now,
        scopes=["all-apis"],
        inferred_scopes=["sql"],
        autoscope_state=RUNNING,
        expires_at=now + 300 * day,
    )
    token(
        "observed_12",
        prod,
        owner(prod, "marco@acme.example"),
        "prod",
        comment="dashboard refresh",
        created_at=now - 18 * day,
        last_used_at=now,
        scopes=["all-apis"],
        inferred_scopes=["sql", "dashboards"],
        autoscope_state=RUNNING,
        expires_at=now + 200 * day,
    )
    token(
        "test_token",
        analytics,
        owner(analytics, "lena@acme.example"),
        "analytics",
        comment="test notebook",
        created_at=now - 40 * day,
        last_used_at=now - 2 * day,
        scopes=["sql"],
        expires_at=now + 12 * day,
    )
    token(
        "expiring",
        prod,
        owner(prod, "sam@acme.example"),
        "prod",
        comment="ingest api",
        created_at=now - 87 * day,
        last_used_at=now,
        scopes=["sql", "jobs"],
        expires_at=now + 3 * day,
    )
    token(
        "unused_80",
        analytics,
        owner(analytics, "aiko@acme.example"),
        "analytics",
        comment="churn scoring model",
        created_at=now - 200 * day,
        last_used_at=now - 80 * day,
        scopes=["sql"],
        expires_at=now + 200 * day,
    )
    token(
        "privileged",
        prod,
        owner(prod, "dev@acme.example"),
        "prod",
        comment="ci token minter",
        created_at=now - 30 * day,
        last_used_at=now,
        scopes=["authentication"],
        expires_at=now + 60 * day,
    )
    token(
        "junk",
        analytics,
        owner(analytics, "olga@acme.example"),
        "analytics",
        comment="tmp",
        created_at=now - 20 * day,
        last_used_at=now - day,
        scopes=["sql"],
        expires_at=now + 50 * day,
    )
    token(
        "leaver",
        prod,
        owner(prod, "tom@acme.example"),
        "prod",
        comment="tom's exports",
        created_at=now - 120 * day,
        last_used_at=now - 30 * day,
        scopes=["sql"],
        expires_at=now + 10 * day,
    )
    # Older than the organisation allows (365 days): overdue, so tokenbot's enforcement revokes it.
    token(
        "overdue_policy",
        analytics,
        owner(analytics, "nina@acme.example"),
        "analytics",
        comment="legacy extract",
        created_at=now - 380 * day,
        last_used_at=now - 10 * day,  # enforcement never revokes a token used within 7 days
        scopes=["sql"],
        expires_at=now + 150 * day,
    )
    token(
        "policy_extend",
        prod,
        owner(prod, "emma@acme.example"),
        "prod",
        comment="weekly finance export",
        created_at=now - 355 * day,
        last_used_at=now - 2 * day,
        scopes=["sql"],
        expires_at=now + 200 * day,
    )
    token(
        "sp_rotate",
        prod,
        etl,
        "prod",
        comment="etl-service nightly",
        created_at=now - 85 * day,
        last_used_at=now,
        scopes=["sql", "jobs"],
        expires_at=now + 5 * day,
    )
    token(
        "sp_unowned",
        analytics,
        reporting,
        "analytics",
        comment="reporting-bot",
        created_at=now - 50 * day,
        last_used_at=now,
        scopes=["all-apis"],
        expires_at=now + 9 * day,
    )

    # Everyday tokens that need nobody's attention: used this week, scoped, expiring next year.
    rng = random.Random(7)
    comments = [
        "dbt runs",
        "airflow",
        "notebook sync",
        "bi extracts",
        "ml features",
        "power bi",
        "great expectations",
    ]
    healthy_owners = [p for p in PEOPLE if not p.left_company]
    for index in range(28):
        person = healthy_owners[index % len(healthy_owners)]
        sandbox, workspace = (prod, "prod") if index % 2 == 0 else (analytics, "analytics")
        token(
            f"healthy_{index}",
            sandbox,
            owner(sandbox, person.email),
            workspace,
            comment=f"{rng.choice(comments)} ({person.name.split()[0].lower()})",
            created_at=now - rng.randint(5, 40) * day,
            last_used_at=now - rng.randint(0, 3) * day,
            scopes=rng.choice([["sql"], ["sql", "jobs"], ["dashboards"]]),
            expires_at=now + 330 * day,
        )

    # The audit log: Priya's quarter-close job, through its token's login sessions, ran SQL every day and
    # the Jobs API once, 80 days ago (before the observation window).
    rare_job = seeded.token("rare_job")
    rows = []
    for n in range(1, 30):
        rows += _token_use(now - n * day, rare_job, "priya@acme.example", "databrickssql", "executeStatement")
    rows += _token_use(now - 80 * day, rare_job, "priya@acme.example", "jobs", "runNow")
    prod.add_audit_rows(rows)
    prod.add_audit_rows(_consumers(seeded, now))
    prod.add_warehouse("demo-warehouse")
    return seeded


def _consumers(seeded: Seeded, now: datetime) -> list[dict]:
    """Who uses two prod tokens, through their login sessions: Marco's dashboard token is Power BI's
    (refreshes from Microsoft's service addresses every few hours), and Sam's ingest token, used by
    the Python SDK from the office network for weeks, shows up today from a network never seen."""
    rows: list[dict] = []
    power_bi, marco = seeded.token("observed_12"), "marco@acme.example"
    for hours in range(6, 18 * 24, 6):
        ip = f"20.190.{128 + hours % 3}.{10 + hours % 50}"
        rows += audit_rows.use(
            now - timedelta(hours=hours),
            power_bi,
            marco,
            "databrickssql",
            "executeStatement",
            agent=audit_rows.USER_AGENTS["power_bi"],
            ip=ip,
        )
    ingest, sam = seeded.token("expiring"), "sam@acme.example"
    for day in range(1, 60):
        rows += audit_rows.use(
            now - timedelta(days=day, hours=2),
            ingest,
            sam,
            "databrickssql",
            "executeStatement",
            agent=audit_rows.USER_AGENTS["sdk_python"],
            ip=f"10.20.30.{day}",
        )
    rows += audit_rows.use(
        now - timedelta(hours=3),
        ingest,
        sam,
        "databrickssql",
        "executeStatement",
        agent=audit_rows.USER_AGENTS["sdk_python"],
        ip="185.220.101.47",
    )
    return rows


def _audit(when: datetime, service: str, action: str, email: str) -> dict:
    return {
        "event_time": when,
        "service_name": service,
        "action_name": action,
        "user_identity": {"email": email},
        "request_params": {},
        "response": {"statusCode": 200},
    }


def _token_use(when: datetime, token_id: str, email: str, service: str, action: str) -> list[dict]:
    """One use of a token as the audit log records it: the `accounts` `tokenLogin` event, the only one
    naming the token (`request_params.tokenId`), then the call in the same session (APIS.md, audit log)."""
    session = f"demo-{token_id[:8]}-{when:%Y%m%d%H%M}"
    login = {
        **_audit(when, "accounts", "tokenLogin", email),
        "session_id": session,
        "request_params": {"tokenId": token_id, "authenticationMethod": "API_PAT_TOKEN"},
    }
    return [login, {**_audit(when + timedelta(seconds=1), service, action, email), "session_id": session}]
