"""Misuse signals: pure rules over one audit read."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.domain.clients import Use
from bot.domain.misuse import DailyUse, FailedDay, MisuseKind, MisusePolicy, detect

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
DAY = timedelta(days=1)


def use(client="dbt", network="10.0.0.0/24", first=30, last=0.1, calls=10) -> Use:
    return Use(client, network, NOW - first * DAY, NOW - last * DAY, calls)


def signals(uses=None, daily=(), failed=(), inactive=(), policy=MisusePolicy()):
    return detect(
        workspace="prod",
        uses=uses or {},
        daily=daily,
        failed=failed,
        owner_inactive=inactive,
        policy=policy,
        now=NOW,
    )


def test_a_network_first_seen_today_on_an_established_token_is_new():
    [found] = signals({"t1": [use(), use(network="203.0.113.0/24", first=0.2, calls=3)]})

    assert found.kind is MisuseKind.NEW_NETWORK
    assert found.key == "new_network:prod:t1:203.0.113.0/24"
    assert found.evidence["network"] == "203.0.113.0/24"
    assert found.evidence["known_networks"] == ["10.0.0.0/24"]
    assert found.evidence["calls"] == 3 and found.evidence["clients"] == ["dbt"]


def test_a_new_tokens_first_networks_and_clients_are_not_news():
    assert signals({"t1": [use(first=1), use(network="203.0.113.0/24", client="curl", first=0.5)]}) == []


def test_an_allowed_network_is_never_new():
    policy = MisusePolicy(allowed_networks=("203.0.113.0/24",))
    assert signals({"t1": [use(), use(network="203.0.113.0/24", first=0.2)]}, policy=policy) == []


def test_a_network_seen_before_the_recent_window_is_not_new():
    assert signals({"t1": [use(), use(network="203.0.113.0/24", first=5)]}) == []


def test_a_new_client_family_on_an_established_token():
    [found] = signals({"t1": [use(), use(client="curl", first=0.3)]})

    assert found.kind is MisuseKind.NEW_CLIENT and found.evidence["client"] == "curl"
    assert found.evidence["known_clients"] == ["dbt"]


def test_several_clients_or_networks_in_one_day_above_the_threshold():
    daily = [DailyUse("t1", TODAY, f"client-{n}", f"10.0.{n}.0/24", 2) for n in range(4)]

    found = {s.kind: s for s in signals(daily=daily)}

    assert set(found) == {MisuseKind.MANY_CLIENTS, MisuseKind.MANY_NETWORKS}
    assert found[MisuseKind.MANY_CLIENTS].key == f"many_clients:prod:t1:{TODAY.isoformat()}"
    assert found[MisuseKind.MANY_CLIENTS].evidence["distinct"] == 4
    assert signals(daily=daily[:3]) == []  # three is the threshold, not above it
    allowed = MisusePolicy(allowed_networks=("10.0.0.0/16",))
    assert {s.kind for s in signals(daily=daily, policy=allowed)} == {MisuseKind.MANY_CLIENTS}


def test_failed_logins_above_the_threshold_in_one_day():
    first = NOW - timedelta(hours=3)
    failed = [
        FailedDay("t1", TODAY, "198.51.100.0/24", 15, first, first + timedelta(minutes=5)),
        FailedDay("t1", TODAY, "203.0.113.0/24", 6, first, first + timedelta(minutes=9)),
        FailedDay("t2", TODAY, "203.0.113.0/24", 20, first, first),
    ]

    [found] = signals(failed=failed)

    assert found.kind is MisuseKind.FAILED_LOGINS and found.token_id == "t1"
    assert found.evidence["failures"] == 21 and found.evidence["threshold"] == 20
    assert found.evidence["networks"][0] == {"name": "198.51.100.0/24", "failures": 15}


def test_use_after_the_owner_was_deactivated():
    [found] = signals({"t1": [use(first=3, last=0.5)], "t2": [use(first=30, last=10)]}, inactive=["t1", "t2"])

    assert (found.kind, found.token_id) == (MisuseKind.OWNER_DEACTIVATED, "t1")
    assert found.evidence["clients"] == ["dbt"]


def test_every_signal_can_be_switched_off():
    off = MisusePolicy(enabled=False)
    assert (
        signals({"t1": [use(), use(network="203.0.113.0/24", first=0.2)]}, inactive=["t1"], policy=off) == []
    )
    quiet = MisusePolicy(
        new_network=False, new_client=False, max_failed_logins_per_day=0, owner_deactivated=False
    )
    failed = [FailedDay("t1", date(2026, 11, 30), "x", 500, NOW, NOW)]
    assert (
        signals({"t1": [use(), use(network="203.0.113.0/24", first=0.2)]}, failed=failed, policy=quiet) == []
    )
