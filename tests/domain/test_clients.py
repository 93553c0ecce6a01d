"""Client families, networks and audit coverage: the pure rules behind "who uses this token"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.clients import (
    UNKNOWN_CLIENT,
    UNKNOWN_NETWORK,
    Coverage,
    TokenConsumers,
    Use,
    client_family,
    coverage,
    network_of,
    summarise,
    within,
)
from bot.sandbox.databricks.audit_rows import USER_AGENTS

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        (USER_AGENTS["power_bi"], "Power BI"),
        (USER_AGENTS["tableau"], "Tableau"),
        (USER_AGENTS["dbt"], "dbt"),
        (USER_AGENTS["airflow"], "Airflow"),
        (USER_AGENTS["terraform"], "Terraform"),
        (USER_AGENTS["cli"], "Databricks CLI"),
        (USER_AGENTS["sdk_python"], "Databricks SDK (Python)"),
        (USER_AGENTS["sdk_go"], "Databricks SDK (Go)"),
        (USER_AGENTS["sdk_java"], "Databricks SDK (Java)"),
        (USER_AGENTS["jdbc"], "JDBC driver"),
        (USER_AGENTS["odbc"], "ODBC driver"),
        (USER_AGENTS["requests"], "python-requests"),
        (USER_AGENTS["curl"], "curl"),
        ("PyDatabricksSqlConnector/3.1.0", "Databricks SQL connector (Python)"),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)", "Web browser"),
    ],
)
def test_known_clients_are_named_by_family(agent, family):
    assert client_family(agent) == family


def test_an_application_is_named_before_the_library_it_is_built_on():
    # Power BI speaks through an ODBC driver; the Terraform provider and the CLI through the Go SDK.
    assert client_family("PowerBI/2.1 SimbaSparkODBCDriver/2.8") == "Power BI"
    assert client_family("cli/0.230.0 databricks-sdk-go/0.48.0") == "Databricks CLI"
    assert client_family("databricks-tf-provider/1.58.0 databricks-sdk-go/0.49.0") == "Terraform"


def test_an_unknown_agent_is_shown_as_it_is_without_control_characters_and_cut():
    assert client_family("acme-sync/2.0") == "acme-sync/2.0"
    assert client_family("evil\x1b[2J\nagent") == "evil [2J agent"
    long = client_family("a" * 500)
    assert len(long) == 60 and long.endswith("…")
    assert client_family(None) == client_family("  ") == UNKNOWN_CLIENT


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("10.30.0.242", "10.30.0.0/24"),
        ("2001:db8:1:2:aaaa::17", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.33", "192.0.2.0/24"),
        ("203.0.113.9, 10.0.0.1", "203.0.113.0/24"),
        ("", UNKNOWN_NETWORK),
        (None, UNKNOWN_NETWORK),
        ("not-an-ip", UNKNOWN_NETWORK),
    ],
)
def test_addresses_are_grouped_by_24_or_64(address, network):
    assert network_of(address) == network


def test_allowed_networks_contain_the_24s_inside_them():
    assert within("10.30.0.0/24", ["10.0.0.0/8"])
    assert not within("11.30.0.0/24", ["10.0.0.0/8"])
    assert within("2001:db8:1:2::/64", ["2001:db8::/32"])
    assert not within(UNKNOWN_NETWORK, ["0.0.0.0/0"])


def test_a_summary_has_one_line_per_client_most_recent_first():
    uses = [
        Use("dbt", "10.0.0.0/24", NOW - timedelta(days=9), NOW - timedelta(days=3), 5),
        Use("Power BI", "20.0.0.0/24", NOW - timedelta(days=90), NOW - timedelta(hours=1), 40),
        Use("Power BI", "20.0.1.0/24", NOW - timedelta(days=20), NOW - timedelta(days=2), 60),
    ]

    power_bi, dbt = summarise(uses)

    assert (power_bi.client, power_bi.networks, power_bi.calls) == (
        "Power BI",
        ("20.0.1.0/24", "20.0.0.0/24"),
        100,
    )
    assert power_bi.first_seen == NOW - timedelta(days=90) and power_bi.last_seen == NOW - timedelta(hours=1)
    assert dbt.as_dict() == {
        "client": "dbt",
        "networks": ["10.0.0.0/24"],
        "first_seen": "2026-11-21T12:00:00Z",
        "last_seen": "2026-11-27T12:00:00Z",
        "calls": 5,
    }


def test_coverage_says_when_the_audit_log_cannot_speak_of_recent_use():
    assert coverage(None, None, NOW) is Coverage.NOT_READ
    assert coverage(NOW - timedelta(days=4), NOW - timedelta(days=4), NOW) is Coverage.STALE
    assert coverage(NOW - timedelta(hours=1), None, NOW) is Coverage.EMPTY
    assert coverage(NOW, NOW - timedelta(days=2), NOW) is Coverage.DELAYED
    assert coverage(NOW, NOW - timedelta(hours=5), NOW) is Coverage.OK


def test_not_used_is_said_only_with_a_covering_log():
    quiet = TokenConsumers(consumers=(), coverage=Coverage.OK)
    assert quiet.knows_no_recent_use(NOW)
    for state in (Coverage.NOT_READ, Coverage.STALE, Coverage.EMPTY, Coverage.DELAYED):
        assert not TokenConsumers(consumers=(), coverage=state).knows_no_recent_use(NOW)


def test_a_raw_agent_kept_beside_its_client_is_cleaned_and_cut():
    from bot.domain.clients import clean_agent

    assert clean_agent("curl/8\x1b[2J\r\n  extra", 300) == "curl/8 [2J extra"
    assert clean_agent("x" * 400, 300) == "x" * 299 + "…"
