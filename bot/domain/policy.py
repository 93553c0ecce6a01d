"""The policy, and what it says is about to happen to a token: pure rules, `now` passed in.

`evaluate(token, policy, now)` turns the facts the service layer read from the database
(`TokenFacts`, in `bot.domain.tokens`) into deadlines (what will happen, when, and why:
`bot.domain.deadlines`) and findings (risks: `bot.domain.findings`). It does no I/O and never
reads the clock. Every datetime is aware UTC (aware datetimes in another zone are converted;
naive ones are refused); the deadlines module says how days and overdue are counted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter
from types import MappingProxyType

from bot.domain.deadlines import Deadline, DeadlineKind
from bot.domain.findings import Finding, FindingResult, find_risks, junk_regex
from bot.domain.misuse import MisusePolicy
from bot.domain.shadow import DeniedCall
from bot.domain.tokens import Exemption, TokenFacts, as_utc, is_observing

_ZERO = timedelta(0)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)
_START_OF_TIME = datetime.min.replace(tzinfo=UTC)


# --- policy ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """The `[policy]` table of the configuration file; built with `Policy(**values)`."""

    reminder_days: tuple[int, ...] = (14, 7, 3, 1)
    autoscope_observation_days: int = 30
    inactivity_revocation_days: int = 90
    org_max_inactive_days: int = 60  # 0 = off
    org_max_lifetime_days: int = 365  # 0 = off
    max_extension_days: int = 30
    max_total_extension_days: int = 60  # an owner's own extensions beyond the original deadline, in all
    request_hold_days: int = 3  # how long an open request to the admins holds enforcement back
    escalate_after_days: int = 3
    quiet_hours: str = "18:00-09:00"
    junk_comment_patterns: tuple[str, ...] = ("test", "tmp", "old", "do not delete")
    autoscope_rollout_date: date | None = None
    sync_interval_minutes: int = 60
    enforce: bool = False
    max_revocations_per_run: int = 20
    max_revocations_per_day: int = 50  # enforcement's breaker: more in 24 hours trips it
    enforce_min_idle_days: int = 7  # enforcement never revokes a token used more recently
    usage_lookback_days: int = 180
    max_gone_fraction: float = 0.2
    rotation_grace_hours: int = 24
    rotation_lifetime_days: int = 90
    misuse: MisusePolicy = field(default_factory=MisusePolicy)  # `[policy.misuse]`

    def __post_init__(self) -> None:
        # TOML arrays arrive as lists: store tuples so the policy stays immutable and hashable.
        if not isinstance(self.reminder_days, tuple):
            object.__setattr__(self, "reminder_days", tuple(self.reminder_days))
        if not isinstance(self.junk_comment_patterns, tuple):
            object.__setattr__(self, "junk_comment_patterns", tuple(self.junk_comment_patterns))

    def quiet_window(self) -> tuple[time, time] | None:
        """`quiet_hours` parsed: (start, end), or None when off. Raises ValueError when malformed."""
        return parse_quiet_hours(self.quiet_hours)


_QUIET_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """Parse "HH:MM-HH:MM" (the window may wrap midnight, e.g. "18:00-09:00"); "" or "off" means None.

    Raises ValueError with a message that says what to write instead.
    """
    if not isinstance(text, str):
        raise ValueError(f'quiet_hours must be text like "18:00-09:00" or "off", not {text!r}')
    cleaned = text.strip()
    if cleaned == "" or cleaned.lower() == "off":
        return None
    match = _QUIET_HOURS.fullmatch(cleaned)
    if match is None:
        raise ValueError(f'quiet_hours {text!r} is not "HH:MM-HH:MM" (e.g. "18:00-09:00") or "off"')
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    if max(start_hour, end_hour) > 23 or max(start_minute, end_minute) > 59:
        raise ValueError(f"quiet_hours {text!r}: hours go from 00 to 23 and minutes from 00 to 59")
    start, end = time(start_hour, start_minute), time(end_hour, end_minute)
    if start == end:
        raise ValueError(f'quiet_hours {text!r}: start and end are the same; write "off" for no quiet hours')
    return start, end


# --- evaluation --------------------------------------------------------------------------------------------

_ACTION_AUTOSCOPE = "Databricks narrows the token to the scopes it observed"
_ACTION_EXPIRY = "the token expires"
_ACTION_INACTIVITY = "Databricks revokes the unused token"


@dataclass(frozen=True, slots=True)
class Evaluation:
    token: TokenFacts
    deadlines: tuple[Deadline, ...]  # by due_at, earliest first (overdue ones included)
    findings: tuple[FindingResult, ...]  # worst first (FINDING_SEVERITY)

    @property
    def next_deadline(self) -> Deadline | None:
        """The earliest deadline, overdue or not; None when nothing is scheduled."""
        return self.deadlines[0] if self.deadlines else None

    @property
    def finding_codes(self) -> tuple[Finding, ...]:
        return tuple(finding.code for finding in self.findings)

    def deadline(self, kind: str, due: date | datetime) -> Deadline | None:
        """The deadline of this kind (a DeadlineKind value) due on the day of `due`, as computed
        now; None when there is none (it moved to another day, or never was). The day, not the
        moment, names a deadline: a message and its buttons are about "the expiry on 3 March"."""
        day = due.date() if isinstance(due, datetime) else due
        for deadline in self.deadlines:
            if deadline.kind == kind and deadline.due_at.date() == day:
                return deadline
        return None

    def due_within(self, now: datetime, days: int) -> tuple[Deadline, ...]:
        """Deadlines due within `days` days of `now`, overdue ones included."""
        horizon = now + timedelta(days=days)
        return tuple(deadline for deadline in self.deadlines if deadline.due_at <= horizon)


# --- rules -------------------------------------------------------------------------------------------------

_NO_RARE_SCOPES: Mapping[str, date] = MappingProxyType({})
# Enum members as module constants: attribute access on an Enum class is slow in Python 3.11.
_AUTOSCOPE_ENFORCEMENT = DeadlineKind.AUTOSCOPE_ENFORCEMENT
_EXPIRY = DeadlineKind.EXPIRY
_INACTIVITY_REVOCATION = DeadlineKind.INACTIVITY_REVOCATION
_ORG_POLICY = DeadlineKind.ORG_POLICY
_BY_DUE_AT = attrgetter("due_at")


class _Rules:
    """What evaluate() needs from a Policy, computed once per Policy object."""

    __slots__ = (
        "policy",
        "observation",
        "observation_days",
        "rollout_at",
        "inactivity",
        "inactivity_reason",
        "org_inactive",
        "org_inactive_action",
        "org_inactive_reason",
        "org_lifetime",
        "org_lifetime_action",
        "org_lifetime_days",
        "junk",
    )

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.observation_days = policy.autoscope_observation_days
        self.observation = _days(policy.autoscope_observation_days)
        rollout = policy.autoscope_rollout_date
        self.rollout_at = datetime.combine(rollout, time(), UTC) if rollout is not None else None
        days = policy.inactivity_revocation_days
        self.inactivity = _days(days) if days > 0 else None
        self.inactivity_reason = f"; Databricks revokes tokens unused for {days} days"
        days = policy.org_max_inactive_days
        self.org_inactive = _days(days) if days > 0 else None
        self.org_inactive_action = _org_action(policy, f"inactive over {days} days")
        self.org_inactive_reason = f"; tokenbot policy allows {days} days without use"
        days = policy.org_max_lifetime_days
        self.org_lifetime = _days(days) if days > 0 else None
        self.org_lifetime_action = _org_action(policy, f"older than {days} days")
        self.org_lifetime_days = days
        self.junk = junk_regex(policy.junk_comment_patterns)


def _org_action(policy: Policy, limit: str) -> str:
    """What passing a tokenbot policy limit really does: with `enforce` off (the default),
    nothing is revoked; the admins hear of it."""
    if policy.enforce:
        return f"tokenbot policy: revoke ({limit})"
    return f"tokenbot policy limit ({limit}): the admins are told, nothing is revoked"


_RULES: dict[int, _Rules] = {}


def _rules_for(policy: Policy) -> _Rules:
    # Keyed on identity (hashing a Policy on every call costs more than the rules themselves);
    # the entry holds the policy, so its id cannot be reused while the entry exists.
    rules = _RULES.get(id(policy))
    if rules is None or rules.policy is not policy:
        rules = _Rules(policy)
        if len(_RULES) >= 16:
            _RULES.clear()
        _RULES[id(policy)] = rules
    return rules


def _days(days: int) -> timedelta:
    try:
        return timedelta(days=days)
    except OverflowError:
        return timedelta.max if days > 0 else timedelta.min


def _plus(moment: datetime, delta: timedelta) -> datetime:
    try:
        return moment + delta
    except OverflowError:
        return _END_OF_TIME if delta > _ZERO else _START_OF_TIME


def evaluate(
    token: TokenFacts,
    policy: Policy,
    now: datetime,
    rare_scopes: Mapping[str, date] = _NO_RARE_SCOPES,
    denied: Sequence[DeniedCall] = (),
) -> Evaluation:
    """The deadlines and findings of one token at `now`.

    `now` matters only for exemptions: one counts while `now < until`. `rare_scopes` maps a scope the
    token's owner used rarely (from the audit log) to its last-use date; each one missing from the
    inferred scopes is a `rare_api` finding. `denied` (bot.domain.shadow, for a token in observation)
    is the exact evidence instead: a `rare_api` per scope naming its calls, and `api_not_covered`.
    """
    if now.tzinfo is not UTC:
        now = as_utc(now, "now")
    rules = _rules_for(policy)
    observing = is_observing(token)
    created_at = token.created_at
    created_day = created_at.date().isoformat()
    last_used_on = token.last_used_on
    if last_used_on is None:
        idle_since, idle_reason = created_at, f"never used since creation on {created_day}"
    else:
        idle_since, idle_reason = last_used_on, f"last used {last_used_on.date().isoformat()}"

    deadlines: list[Deadline] = []
    if observing:
        deadlines.append(_autoscope_deadline(token, rules, created_day))

    expires_at = token.expires_at
    if expires_at is not None:
        lifetime_days = (expires_at - created_at).days  # .days of a timedelta is rounded down
        reason = f"created {created_day} with a {lifetime_days}-day lifetime"
        deadlines.append(Deadline(_EXPIRY, expires_at, _ACTION_EXPIRY, reason))

    if rules.inactivity is not None:
        due_at = _plus(idle_since, rules.inactivity)
        reason = idle_reason + rules.inactivity_reason
        deadlines.append(Deadline(_INACTIVITY_REVOCATION, due_at, _ACTION_INACTIVITY, reason))

    # Organisation policy: the earlier of the inactivity and the lifetime rules.
    org_due: datetime | None = None
    by_lifetime = False
    if rules.org_inactive is not None:
        org_due = _plus(idle_since, rules.org_inactive)
    if rules.org_lifetime is not None:
        lifetime_due = _plus(created_at, rules.org_lifetime)
        if org_due is None or lifetime_due < org_due:
            org_due, by_lifetime = lifetime_due, True
    if org_due is not None:
        if by_lifetime:
            action = rules.org_lifetime_action
            reason = f"created {created_day}; tokenbot policy allows a {rules.org_lifetime_days}-day life"
        else:
            action, reason = rules.org_inactive_action, idle_reason + rules.org_inactive_reason
        if token.exemptions:
            exempt_until = _exempt_until(token.exemptions, org_due, now)
            if exempt_until is not None:
                org_due = exempt_until
                reason = f"{reason}; exempt until {exempt_until.date().isoformat()}"
        deadlines.append(Deadline(_ORG_POLICY, org_due, action, reason))

    if len(deadlines) > 1:
        deadlines.sort(key=_BY_DUE_AT)  # stable: equal times keep the DeadlineKind order
    return Evaluation(token, tuple(deadlines), find_risks(token, rules.junk, observing, rare_scopes, denied))


def _autoscope_deadline(token: TokenFacts, rules: _Rules, created_day: str) -> Deadline:
    """Enforcement: the event's date if one came, else observation start + the observation window."""
    if token.enforcement_at is not None:
        enforcement_day = token.enforcement_at.date().isoformat()
        reason = f"enforcement on {enforcement_day} announced by Databricks' auto-scoping reminder"
        return Deadline(_AUTOSCOPE_ENFORCEMENT, token.enforcement_at, _ACTION_AUTOSCOPE, reason)
    start = token.observation_started_at
    if start is not None:
        started = start.date().isoformat()
    elif rules.rollout_at is not None and rules.rollout_at > token.created_at:
        # The token existed before auto-scoping reached the workspace: observation began at the rollout.
        start = rules.rollout_at
        started = f"{start.date().isoformat()} (auto-scoping rollout date)"
    else:
        start, started = token.created_at, f"{created_day} (token creation)"
    reason = f"observation started {started}; enforcement after {rules.observation_days} days"
    return Deadline(_AUTOSCOPE_ENFORCEMENT, _plus(start, rules.observation), _ACTION_AUTOSCOPE, reason)


def _exempt_until(exemptions: tuple[Exemption, ...], due_at: datetime, now: datetime) -> datetime | None:
    """The end of the latest active org-policy exemption that ends after `due_at`, if any.

    An exemption holds the rule off until it ends; once ended (`until <= now`) it no longer counts.
    Databricks' own deadlines cannot be exempted, so other kinds are ignored.
    """
    latest: datetime | None = None
    for exemption in exemptions:
        until = exemption.until
        if exemption.kind == _ORG_POLICY and until > now and until > due_at:
            if latest is None or until > latest:
                latest = until
    return latest
