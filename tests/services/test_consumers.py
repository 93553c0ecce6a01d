"""Who uses a token: the audit log read through the Statement Execution API of the Databricks
sandbox (real databricks-sdk over HTTP), grouped by the warehouse, stored per client family and
network, and what tokenbot can say when the audit data is missing or behind."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import clock, db
from bot.databricks import consumers as consumer_sql
from bot.databricks.gateway import gateway_factory
from bot.databricks.records import GatewayError
from bot.domain.clients import Coverage
from bot.models import ConsumerRead, TokenConsumer
from bot.sandbox.databricks.audit_rows import USER_AGENTS, use
from bot.services import audit_read, consumers
from tests.support.autoscope_helpers import EMAIL, QUARTERLY, WAREHOUSE, quarterly_world, refresh_audit
from tests.support.world import close_world


@pytest.fixture
def world(tmp_path, monkeypatch, database_url):
    world, stack = quarterly_world(tmp_path, monkeypatch, database_url)
    yield world
    close_world(world, stack)


def uses(hours_ago: float, agent: str | None, ip: str | None, times: int = 1, token_id: str = QUARTERLY):
    now = clock.now()
    rows = []
    for n in range(times):
        when = now - timedelta(hours=hours_ago, seconds=n)
        rows += use(when, token_id, EMAIL, "databrickssql", "executeStatement", agent=agent, ip=ip)
    return rows


def consumers_of(world, token_id: str = QUARTERLY, workspace: str = "prod"):
    with db.session_scope(world.engine) as session:
        return consumers.of_token(session=session, workspace=workspace, token_id=token_id, now=clock.now())


def stored(world) -> list[TokenConsumer]:
    with db.session_scope(world.engine) as session:
        query = select(TokenConsumer).order_by(TokenConsumer.client, TokenConsumer.network)
        return list(session.execute(query).scalars())


def test_consumers_are_client_families_and_networks_with_first_and_last_seen(world):
    prod = world.org["prod"]
    prod.add_audit_rows(uses(30, USER_AGENTS["power_bi"], "20.190.5.10", times=3))
    prod.add_audit_rows(uses(2, USER_AGENTS["power_bi"], "20.190.5.77"))  # same /24
    prod.add_audit_rows(uses(5, USER_AGENTS["dbt"], "10.1.2.3", times=2))
    prod.add_audit_rows(uses(1, "weird-tool/1.0 \x1b[31m" + "x" * 100, "2001:db8:1:2::17"))

    results = refresh_audit(world)

    assert results["prod"].ok and results["prod"].consumers == 3
    found = consumers_of(world)
    assert found.coverage is Coverage.OK
    by_client = {c.client: c for c in found.consumers}
    assert set(by_client) == {"Power BI", "dbt", "weird-tool/1.0 [31m" + "x" * 40 + "…"}  # no ESC, cut
    power_bi = by_client["Power BI"]
    assert power_bi.networks == ("20.190.5.0/24",)
    assert power_bi.calls == 8  # 4 uses: a login and a call each
    assert power_bi.last_seen - power_bi.first_seen > timedelta(hours=27)
    assert by_client["dbt"].networks == ("10.1.2.0/24",)
    assert [c.client for c in found.consumers][0].startswith("weird-tool")  # the most recent first
    assert next(c for c in found.consumers if c.client.startswith("weird")).networks == ("2001:db8:1:2::/64",)
    assert {row.agent for row in stored(world) if row.client == "Power BI"} == {USER_AGENTS["power_bi"]}


def test_the_warehouse_groups_the_events_so_the_result_stays_small(world):
    prod = world.org["prod"]
    prod.add_audit_rows(uses(3, USER_AGENTS["sdk_python"], "10.9.8.7", times=300))
    settings = world.settings
    gateway = gateway_factory(settings.workspaces, settings.databricks)("prod")
    now = clock.now()

    audit = gateway.audit_consumers(WAREHOUSE, now - timedelta(days=180), now - timedelta(days=2))

    assert len(audit.uses) == 1 and audit.uses[0].calls == 600
    assert audit.events == 600 and audit.through is not None


def test_more_groups_than_the_bound_fail_the_read_rather_than_cut_it_short(world):
    prod = world.org["prod"]
    prod.add_audit_rows(uses(3, USER_AGENTS["sdk_python"], "10.9.8.7"))
    prod.add_audit_rows(uses(3, USER_AGENTS["curl"], "10.9.8.7"))
    settings = world.settings
    gateway = gateway_factory(settings.workspaces, settings.databricks)("prod")
    now = clock.now()

    with pytest.raises(GatewayError, match="more than 1 groups; shorten policy.usage_lookback_days"):
        consumer_sql.read_consumers(
            gateway._audit, WAREHOUSE, now - timedelta(days=180), now, max_wait_seconds=60, max_groups=1
        )


def test_a_refresh_replaces_what_the_previous_read_saw(world):
    prod = world.org["prod"]
    prod.add_audit_rows(uses(3, USER_AGENTS["tableau"], "10.0.0.1"))
    refresh_audit(world)
    assert [row.client for row in stored(world)] == ["Tableau"]

    prod.add_audit_rows(uses(2, USER_AGENTS["tableau"], "10.0.0.2"))
    refresh_audit(world)

    [row] = stored(world)
    assert (row.client, row.network, row.calls) == ("Tableau", "10.0.0.0/24", 4)


def test_a_workspace_without_an_audit_warehouse_says_usage_data_unavailable(world):
    refresh_audit(world)

    found = consumers_of(world, workspace="dev", token_id="anything")

    assert found.coverage is Coverage.NOT_READ
    assert not found.knows_no_recent_use(clock.now())


def test_an_empty_audit_log_never_means_not_used(world):
    refresh_audit(world)

    found = consumers_of(world)

    assert found.coverage is Coverage.EMPTY and found.consumers == ()
    assert not found.knows_no_recent_use(clock.now())


def test_a_delayed_audit_log_shows_what_it_saw_but_never_says_not_used(world):
    world.org["prod"].add_audit_rows(uses(24 * 4, USER_AGENTS["airflow"], "10.0.0.1"))  # newest: 4 days ago
    refresh_audit(world)

    found = consumers_of(world)

    assert found.coverage is Coverage.DELAYED
    assert [c.client for c in found.consumers] == ["Airflow"]
    assert not found.knows_no_recent_use(clock.now())


def test_a_fresh_audit_log_without_this_token_says_not_used(world):
    other = world.org["prod"].add_token(owner_id=world.owner_id, comment="spare", created_at=clock.now())
    world.sync()
    world.org["prod"].add_audit_rows(uses(1, USER_AGENTS["cli"], "10.0.0.1"))
    refresh_audit(world)

    assert consumers_of(world, token_id=other).knows_no_recent_use(clock.now())
    assert not consumers_of(world).knows_no_recent_use(clock.now())


def test_a_failed_read_is_recorded_and_keeps_the_previous_consumers(world):
    prod = world.org["prod"]
    prod.add_audit_rows(uses(1, USER_AGENTS["terraform"], "10.0.0.1"))
    refresh_audit(world)
    prod.fail("POST", r"/api/2.0/sql/statements", 400, times=1)
    settings = world.settings

    result = audit_read.refresh(
        engine=world.engine,
        workspace="prod",
        warehouse_id=WAREHOUSE,
        gateway=gateway_factory(settings.workspaces, settings.databricks)("prod"),
        policy=settings.policy,
        now=clock.now(),
        max_wait_seconds=30,
    )

    assert result.error
    assert [row.client for row in stored(world)] == ["Terraform"]
    with db.session_scope(world.engine) as session:
        read = session.get(ConsumerRead, "prod")
        assert read.error and read.read_at is not None


def test_the_consumer_statements_are_parameterised_never_formatted(world):
    world.org["prod"].add_audit_rows(uses(1, USER_AGENTS["cli"], "10.0.0.1"))

    refresh_audit(world)

    sent = [
        r
        for r in world.org["prod"].requests
        if r.method == "POST" and r.path.rstrip("/") == "/api/2.0/sql/statements"
    ]
    assert len(sent) == 5  # API usage, then coverage, uses, uses per day, failed logins
    for request in sent:
        body = request.json
        assert {p["name"] for p in body["parameters"]} == {"workspace_id", "since"}
        assert not re.search(rf"\b{world.org['prod'].workspace_id}\b", body["statement"])


# ---------------------------------------------------------------------------------------------
# where a decision is made


def test_usage_refresh_then_the_json_report_has_each_tokens_consumers(world):
    from typer.testing import CliRunner

    from bot.cli.main import app

    world.org["prod"].add_audit_rows(uses(3, USER_AGENTS["power_bi"], "20.190.5.10", times=2))
    runner = CliRunner()

    refreshed = runner.invoke(app, ["usage", "refresh"])
    assert refreshed.exit_code == 0, refreshed.output
    assert "who uses each token: 1 client/network row(s)" in refreshed.output
    result = runner.invoke(app, ["report", "--format", "json"])

    assert result.exit_code == 0, result.output
    [row] = [r for r in json.loads(result.stdout) if r["token_id"] == QUARTERLY]
    [power_bi] = row["consumers"]
    assert power_bi["client"] == "Power BI" and power_bi["networks"] == ["20.190.5.0/24"]
    assert power_bi["calls"] == 4 and power_bi["last_seen"].endswith("Z")
