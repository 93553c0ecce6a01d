"""Misuse signals from a workspace's audit log: pure rules over what the audit read returned.

Each signal names its token, its kind and a `key` that is the same every time the same fact is
seen again, so a finding is recorded (and posted) once however often the log is read:

- new network: a /24 (or /64) first seen in the recent window, for a token the log already knew
  for `min_history_days` before it (a new token's first networks are not news); allowed networks
  never count;
- new client: the same for a client family (an unknown agent counts as its own family);
- several clients, several networks: more distinct client families (or networks outside the
  allowed ones) than the threshold on one day of the recent window;
- failed logins: more failed `tokenLogin`s (401/403) naming the token on one day than the threshold;
- owner deactivated: the token was used in the recent window while its owner is deactivated (as
  of the last inventory sync).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from bot.domain.clients import UNKNOWN_CLIENT, UNKNOWN_NETWORK, Use, within


class MisuseKind(StrEnum):
    """`MisuseFinding.kind`: what looked wrong about a token's use."""

    NEW_NETWORK = "new_network"
    NEW_CLIENT = "new_client"
    MANY_CLIENTS = "many_clients"
    MANY_NETWORKS = "many_networks"
    FAILED_LOGINS = "failed_logins"
    OWNER_DEACTIVATED = "owner_deactivated"


@dataclass(frozen=True, slots=True)
class MisusePolicy:
    """`[policy.misuse]`; a threshold of 0 turns its signal off."""

    enabled: bool = True
    recent_days: int = 2  # signals are about the last days; also the per-day window
    min_history_days: int = 7  # a token seen this long before a new network or client
    new_network: bool = True
    new_client: bool = True
    max_clients_per_day: int = 3  # more distinct client families in one day is a signal
    max_networks_per_day: int = 3  # more distinct networks in one day (allowed ones not counted)
    max_failed_logins_per_day: int = 20
    owner_deactivated: bool = True
    allowed_networks: tuple[str, ...] = ()  # CIDR: never "new", never counted per day

    def __post_init__(self) -> None:
        if not isinstance(self.allowed_networks, tuple):
            object.__setattr__(self, "allowed_networks", tuple(self.allowed_networks))


@dataclass(frozen=True, slots=True)
class DailyUse:
    """Calls of one token by one client family from one network on one day."""

    token_id: str
    day: date
    client: str
    network: str
    calls: int


@dataclass(frozen=True, slots=True)
class FailedDay:
    """Failed token logins of one token on one day, from one network."""

    token_id: str
    day: date
    network: str
    failures: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class Signal:
    kind: MisuseKind
    workspace: str
    token_id: str
    detail: str  # what makes it this finding and no other: the network, client or day
    evidence: dict[str, object] = field(default_factory=dict)

    @property
    def key(self) -> str:
        detail = self.detail if len(self.detail) <= 80 else hashlib.sha256(self.detail.encode()).hexdigest()
        return f"{self.kind}:{self.workspace}:{self.token_id}:{detail}"


def detect(
    *,
    workspace: str,
    uses: Mapping[str, Sequence[Use]],
    daily: Iterable[DailyUse],
    failed: Iterable[FailedDay],
    owner_inactive: Iterable[str],
    policy: MisusePolicy,
    now: datetime,
) -> list[Signal]:
    """Every signal the audit read shows (see the module docstring). `uses`: token -> its
    (client, network) rows over the lookback window; `owner_inactive`: tokens whose owner is
    deactivated."""
    if not policy.enabled:
        return []
    recent = now - timedelta(days=policy.recent_days)
    allowed = policy.allowed_networks
    found: list[Signal] = []
    for token_id, rows in sorted(uses.items()):
        if not rows:
            continue
        if policy.new_network:
            found += _new(workspace, token_id, rows, "network", recent, policy, allowed)
        if policy.new_client:
            found += _new(workspace, token_id, rows, "client", recent, policy, allowed)
    found += _per_day(workspace, daily, policy, allowed)
    found += _failed(workspace, failed, policy)
    if policy.owner_deactivated:
        for token_id in sorted(set(owner_inactive)):
            used = [u for u in uses.get(token_id, ()) if u.last_seen >= recent]
            if used:
                last = max(u.last_seen for u in used)
                found.append(
                    Signal(
                        MisuseKind.OWNER_DEACTIVATED,
                        workspace,
                        token_id,
                        "owner",
                        {
                            "last_seen": _iso(last),
                            "calls": sum(u.calls for u in used),
                            "clients": sorted({u.client for u in used}),
                            "networks": sorted({u.network for u in used}),
                        },
                    )
                )
    return found


def _new(
    workspace: str,
    token_id: str,
    rows: Sequence[Use],
    what: str,
    recent: datetime,
    policy: MisusePolicy,
    allowed: tuple[str, ...],
) -> list[Signal]:
    kind = MisuseKind.NEW_NETWORK if what == "network" else MisuseKind.NEW_CLIENT
    unknown = UNKNOWN_NETWORK if what == "network" else UNKNOWN_CLIENT
    first: dict[str, datetime] = {}
    for use in rows:
        value = getattr(use, what)
        first[value] = min(first.get(value, use.first_seen), use.first_seen)
    signals = []
    for value, seen in sorted(first.items()):
        if seen < recent or value == unknown or (what == "network" and within(value, allowed)):
            continue
        before = [other_seen for other, other_seen in first.items() if other != value and other_seen < seen]
        if not before or seen - min(before) < timedelta(days=policy.min_history_days):
            continue  # nothing known before it, or too little: a new token's first use is not news
        mine = [u for u in rows if getattr(u, what) == value]
        other = "client" if what == "network" else "network"
        evidence: dict[str, object] = {
            what: value,
            "first_seen": _iso(seen),
            "last_seen": _iso(max(u.last_seen for u in mine)),
            "calls": sum(u.calls for u in mine),
            f"{other}s": sorted({getattr(u, other) for u in mine}),
            f"known_{what}s": sorted(v for v, s in first.items() if s < seen)[:10],
        }
        agents = sorted({u.agent for u in mine if u.agent})
        if agents:
            evidence["agents"] = agents[:3]
        signals.append(Signal(kind, workspace, token_id, value, evidence))
    return signals


def _per_day(
    workspace: str, daily: Iterable[DailyUse], policy: MisusePolicy, allowed: tuple[str, ...]
) -> list[Signal]:
    clients: dict[tuple[str, date], dict[str, int]] = {}
    networks: dict[tuple[str, date], dict[str, int]] = {}
    for use in daily:
        key = (use.token_id, use.day)
        if use.client != UNKNOWN_CLIENT:
            bucket = clients.setdefault(key, {})
            bucket[use.client] = bucket.get(use.client, 0) + use.calls
        if use.network != UNKNOWN_NETWORK and not within(use.network, allowed):
            bucket = networks.setdefault(key, {})
            bucket[use.network] = bucket.get(use.network, 0) + use.calls
    signals = []
    for kind, counted, limit, name in (
        (MisuseKind.MANY_CLIENTS, clients, policy.max_clients_per_day, "clients"),
        (MisuseKind.MANY_NETWORKS, networks, policy.max_networks_per_day, "networks"),
    ):
        if limit <= 0:
            continue
        for (token_id, day), calls in sorted(counted.items()):
            if len(calls) > limit:
                evidence = {
                    "day": day.isoformat(),
                    name: [{"name": n, "calls": c} for n, c in sorted(calls.items(), key=lambda i: -i[1])][
                        :10
                    ],
                    "distinct": len(calls),
                    "threshold": limit,
                }
                signals.append(Signal(kind, workspace, token_id, day.isoformat(), evidence))
    return signals


def _failed(workspace: str, failed: Iterable[FailedDay], policy: MisusePolicy) -> list[Signal]:
    limit = policy.max_failed_logins_per_day
    if limit <= 0:
        return []
    by_day: dict[tuple[str, date], list[FailedDay]] = {}
    for row in failed:
        by_day.setdefault((row.token_id, row.day), []).append(row)
    signals = []
    for (token_id, day), rows in sorted(by_day.items()):
        total = sum(r.failures for r in rows)
        if total > limit:
            networks: dict[str, int] = {}
            for r in rows:
                networks[r.network] = networks.get(r.network, 0) + r.failures
            evidence = {
                "day": day.isoformat(),
                "failures": total,
                "threshold": limit,
                "first_seen": _iso(min(r.first_seen for r in rows)),
                "last_seen": _iso(max(r.last_seen for r in rows)),
                "networks": [
                    {"name": n, "failures": c} for n, c in sorted(networks.items(), key=lambda i: -i[1])
                ][:10],
            }
            signals.append(Signal(MisuseKind.FAILED_LOGINS, workspace, token_id, day.isoformat(), evidence))
    return signals


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
