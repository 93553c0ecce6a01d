"""Shadow enforcement: a token's calls from the audit log replayed against the scopes auto-scoping
will keep, to name the calls narrowing would deny. Pure: the service layer reads the calls and the
audit log's freshness (bot/services/shadow.py) and passes `now` in.

The kept set is what auto-scoping sees in the observation window: the token's `inferred_scopes`, to
which Databricks narrows it (DESIGN.md section 1, "after enforcement"), plus the scope of each of
the token's own calls (tied through its login sessions) within the window, which Databricks sees
too though the listing's `inferred_scopes` may not show it yet. A call is judged by
`bot.domain.scopes`:

- `denied`: a scope allows it, and auto-scoping will not keep that scope;
- `not_covered`: no scope allows it (`scopes.not_covered`); scopes chosen by hand will not help;
- `unknown`: tokenbot's table names no scope for its service; it may or may not be denied.

A call that needs no scope (the `tokenLogin` every use makes) or whose scope is kept is not listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.domain import scopes

ALL_APIS = "all-apis"
# An audit read older than this is stale: calls made since are not counted.
STALE_AFTER = timedelta(days=2)
# system.access.audit arrives with a delay (hours); a read whose newest event is older than this (a busy
# workspace logs events all day, people and jobs alike) has lagging data.
DELAYED_AFTER = timedelta(hours=48)


class Verdict(StrEnum):
    DENIED = "denied"
    NOT_COVERED = "not_covered"
    UNKNOWN = "unknown"


_ORDER = {Verdict.DENIED: 0, Verdict.NOT_COVERED: 1, Verdict.UNKNOWN: 2}


@dataclass(frozen=True, slots=True)
class ObservedCall:
    """One service/action of a token over the lookback window, as the audit log shows it."""

    service: str
    action: str
    calls: int
    first_seen: datetime | None
    last_seen: datetime
    approximate: bool  # the owner's calls outside any session of this token's login


@dataclass(frozen=True, slots=True)
class DeniedCall:
    service: str
    action: str
    calls: int
    first_seen: datetime | None
    last_seen: datetime
    approximate: bool
    verdict: Verdict
    scope: str | None  # the scope that would allow it (None when not covered or unknown)

    @property
    def name(self) -> str:
        return f"{self.service}.{self.action}" if self.action else self.service


class AuditState(StrEnum):
    FRESH = "fresh"
    NOT_READ = "not_read"  # never read: no audit_warehouse_id, or no refresh yet
    FAILED = "failed"  # the last read failed (what an earlier read found may still be shown)
    STALE = "stale"  # the last good read is older than STALE_AFTER
    EMPTY = "empty"  # read, but the lookback window held no event at all
    DELAYED = "delayed"  # read, but its newest event is older than DELAYED_AFTER


@dataclass(frozen=True, slots=True)
class AuditFreshness:
    state: AuditState
    read_at: datetime | None = None  # the last good read
    newest_event_at: datetime | None = None
    failed_at: datetime | None = None
    error: str | None = None

    @property
    def has_evidence(self) -> bool:
        """Whether a good read exists whose calls can be shown (with a caveat unless fresh)."""
        return self.read_at is not None and self.state is not AuditState.EMPTY


@dataclass(frozen=True, slots=True)
class Shadow:
    """What narrowing would deny for one token in observation."""

    kept: tuple[str, ...]
    calls: tuple[DeniedCall, ...]  # denied first (by scope), then not covered, then unknown
    audit: AuditFreshness
    lookback_days: int

    def of(self, verdict: Verdict) -> tuple[DeniedCall, ...]:
        return tuple(call for call in self.calls if call.verdict is verdict)

    @property
    def needed_scopes(self) -> tuple[str, ...]:
        """The scopes the denied calls need, each once, in order."""
        return tuple(dict.fromkeys(c.scope for c in self.calls if c.verdict is Verdict.DENIED and c.scope))

    def reasons(self) -> dict[str, tuple[DeniedCall, ...]]:
        """needed scope -> the denied calls it would allow."""
        found: dict[str, list[DeniedCall]] = {}
        for call in self.calls:
            if call.verdict is Verdict.DENIED and call.scope:
                found.setdefault(call.scope, []).append(call)
        return {scope: tuple(calls) for scope, calls in found.items()}


def judge(service: str, action: str) -> tuple[Verdict, str | None] | None:
    """How a call fares once the token has scopes: None when it needs no scope at all."""
    if scopes.not_covered(service, action):
        return Verdict.NOT_COVERED, None
    scope = scopes.scope_for_service(service, action or None)
    if scope is not None:
        return Verdict.DENIED, scope
    if scopes.scope_for_service(service) is not None:
        return None  # an action mapped to no scope, such as accounts/tokenLogin
    return Verdict.UNKNOWN, None


def kept_scopes(
    calls: Iterable[ObservedCall], inferred: Iterable[str], window_start: datetime | None
) -> tuple[str, ...]:
    """What narrowing keeps: `inferred` plus the scopes of the token's own calls last seen within
    the observation window (from `window_start`; None when no window is ahead). The owner's
    approximate calls do not count: they may not have been made with this token."""
    kept = dict.fromkeys(inferred)
    if window_start is not None:
        for call in calls:
            if call.approximate or call.last_seen < window_start:
                continue
            judged = judge(call.service, call.action)
            if judged is not None and judged[1] is not None:
                kept.setdefault(judged[1])
    return tuple(kept)


def replay(calls: Iterable[ObservedCall], kept: Iterable[str], since: datetime) -> tuple[DeniedCall, ...]:
    """The calls (last seen at or after `since`) that the `kept` scopes would not allow. A token's own
    calls (through its login sessions) win over its owner's approximate ones for the same action."""
    kept_set = set(kept)
    if ALL_APIS in kept_set:
        return ()
    chosen: dict[tuple[str, str], ObservedCall] = {}
    for call in calls:
        if call.last_seen < since:
            continue
        key = (call.service, call.action)
        other = chosen.get(key)
        if other is None or (other.approximate and not call.approximate):
            chosen[key] = call
        elif other.approximate == call.approximate:  # the same action under two identities
            chosen[key] = _merged(other, call)
    denied = []
    for call in chosen.values():
        judged = judge(call.service, call.action)
        if judged is None:
            continue
        verdict, scope = judged
        if scope is not None and scope in kept_set:
            continue
        denied.append(
            DeniedCall(
                service=call.service,
                action=call.action,
                calls=call.calls,
                first_seen=call.first_seen,
                last_seen=call.last_seen,
                approximate=call.approximate,
                verdict=verdict,
                scope=scope,
            )
        )
    denied.sort(
        key=lambda c: (_ORDER[c.verdict], c.scope or "", c.approximate, -c.last_seen.timestamp(), c.name)
    )
    return tuple(denied)


def _merged(a: ObservedCall, b: ObservedCall) -> ObservedCall:
    firsts = [t for t in (a.first_seen, b.first_seen) if t is not None]
    return ObservedCall(
        service=a.service,
        action=a.action,
        calls=a.calls + b.calls,
        first_seen=min(firsts) if firsts else None,
        last_seen=max(a.last_seen, b.last_seen),
        approximate=a.approximate,
    )


def freshness(
    *,
    read_at: datetime | None,
    newest_event_at: datetime | None,
    failed_at: datetime | None,
    error: str | None,
    now: datetime,
) -> AuditFreshness:
    """How far the audit log's evidence can be trusted at `now` (never a guess: each state says why)."""
    if read_at is None:
        state = AuditState.FAILED if failed_at is not None else AuditState.NOT_READ
    elif failed_at is not None and failed_at > read_at:
        state = AuditState.FAILED
    elif now - read_at > STALE_AFTER:
        state = AuditState.STALE
    elif newest_event_at is None:
        state = AuditState.EMPTY
    elif read_at - newest_event_at > DELAYED_AFTER:
        state = AuditState.DELAYED
    else:
        state = AuditState.FRESH
    return AuditFreshness(state, read_at, newest_event_at, failed_at, error)
