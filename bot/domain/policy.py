"""What is about to happen to a token, and what is risky about it: pure rules, `now` passed in.

`evaluate(token, policy, now)` turns the facts the service layer read from the database
(`TokenFacts`) into deadlines (what will happen, when, and why) and findings (risks). It does no
I/O and never reads the clock.

Time conventions:

- every datetime is aware UTC (aware datetimes in another zone are converted; naive ones are refused);
- a deadline whose `due_at` is at or before `now` has passed (`Deadline.is_overdue(now)`);
  passed deadlines are still returned so the report and the enforcement job can see them;
- `Deadline.days_left(now)` is the whole days remaining, rounded down: 13 days 23 hours is 13,
  one hour overdue is -1 (exactly `now` is 0 and already overdue).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from operator import attrgetter
from types import MappingProxyType

# --- autoscope_state values (raw text; unknown values are kept as they come) -------------------------------
AUTOSCOPE_DISABLED = "AUTOSCOPE_STATE_DISABLED"
AUTOSCOPE_RUNNING = "AUTOSCOPE_STATE_RUNNING"
AUTOSCOPE_COMPLETED = "AUTOSCOPE_STATE_COMPLETED"
AUTOSCOPE_BACKFILLED = "AUTOSCOPE_STATE_BACKFILLED"
AUTOSCOPE_USER_SELECTED = "AUTOSCOPE_STATE_USER_SELECTED"
AUTOSCOPE_API_NOT_COVERED = "AUTOSCOPE_STATE_API_NOT_COVERED"
KNOWN_AUTOSCOPE_STATES: frozenset[str] = frozenset(
    {
        AUTOSCOPE_DISABLED,
        AUTOSCOPE_RUNNING,
        AUTOSCOPE_COMPLETED,
        AUTOSCOPE_BACKFILLED,
        AUTOSCOPE_USER_SELECTED,
        AUTOSCOPE_API_NOT_COVERED,
    }
)

_AUTHENTICATION_SCOPE = "authentication"
_ALL_APIS_SCOPE = "all-apis"
_DAY = timedelta(days=1)
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


# --- codes and labels --------------------------------------------------------------------------------------


class DeadlineKind(StrEnum):
    AUTOSCOPE_ENFORCEMENT = "autoscope_enforcement"
    EXPIRY = "expiry"
    INACTIVITY_REVOCATION = "inactivity_revocation"
    ORG_POLICY = "org_policy"


class Finding(StrEnum):
    PRIVILEGED_SCOPE = "privileged_scope"
    ALL_APIS = "all_apis"
    NO_EXPIRY = "no_expiry"
    EXCEEDS_WORKSPACE_MAX = "exceeds_workspace_max"
    JUNK_COMMENT = "junk_comment"
    ORPHAN = "orphan"
    OWNER_INACTIVE = "owner_inactive"
    SERVICE_PRINCIPAL_TOKEN = "service_principal_token"  # noqa: S105 (a finding code, not a secret)
    RARE_API = "rare_api"


DEADLINE_LABELS: Mapping[DeadlineKind, str] = MappingProxyType(
    {
        DeadlineKind.AUTOSCOPE_ENFORCEMENT: "Auto-scoping enforcement",
        DeadlineKind.EXPIRY: "Expiry",
        DeadlineKind.INACTIVITY_REVOCATION: "Revocation for inactivity",
        DeadlineKind.ORG_POLICY: "Organisation policy",
    }
)

FINDING_LABELS: Mapping[Finding, str] = MappingProxyType(
    {
        Finding.PRIVILEGED_SCOPE: "Can create tokens",
        Finding.ALL_APIS: "Full API access",
        Finding.NO_EXPIRY: "Never expires",
        Finding.EXCEEDS_WORKSPACE_MAX: "Outlives the workspace maximum",
        Finding.JUNK_COMMENT: "Unclear comment",
        Finding.ORPHAN: "Owner not found",
        Finding.OWNER_INACTIVE: "Owner deactivated",
        Finding.SERVICE_PRINCIPAL_TOKEN: "Service principal token",
        Finding.RARE_API: "Rarely used API at risk",
    }
)

# Worst first. evaluate() emits findings in this order.
_FINDINGS_WORST_FIRST: tuple[Finding, ...] = (
    Finding.PRIVILEGED_SCOPE,
    Finding.ORPHAN,
    Finding.OWNER_INACTIVE,
    Finding.ALL_APIS,
    Finding.RARE_API,
    Finding.EXCEEDS_WORKSPACE_MAX,
    Finding.NO_EXPIRY,
    Finding.SERVICE_PRINCIPAL_TOKEN,
    Finding.JUNK_COMMENT,
)
# Finding -> rank, 0 = worst: `sorted(codes, key=FINDING_SEVERITY.__getitem__)` puts the worst first.
FINDING_SEVERITY: Mapping[Finding, int] = MappingProxyType(
    {code: rank for rank, code in enumerate(_FINDINGS_WORST_FIRST)}
)

_ACTION_AUTOSCOPE = "Databricks narrows the token to the scopes it observed"
_ACTION_EXPIRY = "the token expires"
_ACTION_INACTIVITY = "Databricks revokes the unused token"


# --- inputs ------------------------------------------------------------------------------------------------


def _as_utc(value: datetime, name: str) -> datetime:
    """`value` as aware UTC; a naive datetime is a bug in the caller and is refused."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    tzinfo = value.tzinfo
    if tzinfo is UTC:
        return value
    if tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be an aware UTC datetime, got naive {value.isoformat()} "
            "(SQLite returns naive datetimes: attach timezone.utc)"
        )
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Exemption:
    """An approved exemption: the `kind` deadline is held off until `until`."""

    kind: DeadlineKind
    until: datetime

    def __post_init__(self) -> None:
        until = _as_utc(self.until, "Exemption.until")
        if until is not self.until:
            object.__setattr__(self, "until", until)


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """One token as the rules see it, built by the service layer from the database."""

    workspace: str
    token_id: str
    owner_kind: str | None  # "user", "service_principal", or None when unresolved
    owner_active: bool | None
    owner_resolved: bool
    comment: str
    created_at: datetime
    expires_at: datetime | None  # None = never
    last_used_on: datetime | None  # midnight UTC of the last-use day; None = never used
    scopes: tuple[str, ...]
    inferred_scopes: tuple[str, ...]
    autoscope_state: str | None  # raw text, e.g. "AUTOSCOPE_STATE_RUNNING"; unknown values possible
    observation_started_at: datetime | None
    enforcement_at: datetime | None  # from an auto-scoping event; beats the derived date while observing
    workspace_max_lifetime_days: int | None
    exemptions: tuple[Exemption, ...] = ()

    def __post_init__(self) -> None:
        for name in ("created_at", "expires_at", "last_used_on", "observation_started_at", "enforcement_at"):
            value = getattr(self, name)
            if value is not None and (type(value) is not datetime or value.tzinfo is not UTC):
                object.__setattr__(self, name, _as_utc(value, f"TokenFacts.{name}"))
        for name in ("scopes", "inferred_scopes", "exemptions"):
            value = getattr(self, name)
            if type(value) is not tuple:
                object.__setattr__(self, name, tuple(value))


# --- outputs -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Deadline:
    kind: DeadlineKind
    due_at: datetime  # aware UTC
    action: str  # what will happen, in plain words
    reason: str  # why, with the numbers

    def remaining(self, now: datetime) -> timedelta:
        return self.due_at - now

    def days_left(self, now: datetime) -> int:
        """Whole days until `due_at`, rounded down: 0 in the last 24 hours and at `due_at`, then negative."""
        return (self.due_at - now).days  # timedelta.days is rounded down: -1 day + 23 h is -1

    def is_overdue(self, now: datetime) -> bool:
        """True once `due_at` is reached: a deadline at exactly `now` has passed."""
        return self.due_at <= now


@dataclass(frozen=True, slots=True)
class FindingResult:
    code: Finding
    detail: str


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


def is_observing(token: TokenFacts) -> bool:
    """True while auto-scoping is still observing the token (so `all-apis` is expected).

    That is state RUNNING, or a state tokenbot cannot read (None or unknown) with an enforcement date
    from an auto-scoping event. A known other state (COMPLETED, USER_SELECTED...) means observation is over.
    """
    state = token.autoscope_state
    if state == AUTOSCOPE_RUNNING:
        return True
    return token.enforcement_at is not None and (state is None or state not in KNOWN_AUTOSCOPE_STATES)


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
        self.org_inactive_action = f"tokenbot policy: revoke (inactive over {days} days)"
        self.org_inactive_reason = f"; tokenbot policy allows {days} days without use"
        days = policy.org_max_lifetime_days
        self.org_lifetime = _days(days) if days > 0 else None
        self.org_lifetime_action = f"tokenbot policy: revoke (older than {days} days)"
        self.org_lifetime_days = days
        self.junk = _junk_regex(policy.junk_comment_patterns)


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
) -> Evaluation:
    """The deadlines and findings of one token at `now`.

    `now` matters only for exemptions: one counts while `now < until`. `rare_scopes` maps a scope the
    token's owner used rarely (from the audit log) to its last-use date; each one missing from the
    inferred scopes is a `rare_api` finding.
    """
    if now.tzinfo is not UTC:
        now = _as_utc(now, "now")
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
    return Evaluation(token, tuple(deadlines), _findings(token, rules, observing, rare_scopes))


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


@lru_cache(maxsize=32)
def _junk_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One case-insensitive regex for all patterns, each matched as a whole word or phrase.

    Word characters are letters and digits: "old" matches "old token", "OLD" and "old_pat", not "golden".
    Spaces inside a pattern match any run of white space.
    """
    phrases = sorted({" ".join(pattern.split()) for pattern in patterns if pattern.strip()}, key=len)
    if not phrases:
        return None
    phrases.reverse()  # longest first, so the detail quotes the longest phrase that matched
    alternatives = "|".join(r"\s+".join(re.escape(word) for word in phrase.split()) for phrase in phrases)
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ceil_days(span: timedelta) -> int:
    return -(-span // _DAY)


# Findings whose detail never varies are built once.
_PRIVILEGED = FindingResult(Finding.PRIVILEGED_SCOPE, "authentication scope: can create tokens of any scope")
_ORPHAN = FindingResult(Finding.ORPHAN, "the owner could not be found in the workspace")
_OWNER_INACTIVE = FindingResult(Finding.OWNER_INACTIVE, "the owner's account is deactivated")
_NO_SCOPES = FindingResult(Finding.ALL_APIS, "no scopes set: full access to every API")
_ALL_APIS = FindingResult(Finding.ALL_APIS, "all-apis scope: full access to every API")
_NO_EXPIRY = FindingResult(Finding.NO_EXPIRY, "never expires")
_SERVICE_PRINCIPAL = FindingResult(Finding.SERVICE_PRINCIPAL_TOKEN, "owned by a service principal")
_NO_COMMENT = FindingResult(Finding.JUNK_COMMENT, "no comment")


def _findings(
    token: TokenFacts, rules: _Rules, observing: bool, rare_scopes: Mapping[str, date]
) -> tuple[FindingResult, ...]:
    """Findings in FINDING_SEVERITY order, worst first."""
    found: list[FindingResult] = []
    scopes = token.scopes

    if _AUTHENTICATION_SCOPE in scopes:
        found.append(_PRIVILEGED)
    if not token.owner_resolved:
        found.append(_ORPHAN)
    if token.owner_active is False:
        found.append(_OWNER_INACTIVE)
    if not observing:
        # No scopes at all means full access in Databricks.
        if not scopes:
            found.append(_NO_SCOPES)
        elif _ALL_APIS_SCOPE in scopes:
            found.append(_ALL_APIS)
    if rare_scopes:
        inferred = token.inferred_scopes
        for scope in sorted(rare_scopes):
            if scope not in inferred:
                last_used = rare_scopes[scope]
                if isinstance(last_used, datetime):
                    last_used = last_used.date()
                detail = f"{scope} (last used {last_used.isoformat()}) is not among the inferred scopes"
                found.append(FindingResult(Finding.RARE_API, detail))
    max_days = token.workspace_max_lifetime_days
    expires_at = token.expires_at
    if max_days is not None and max_days > 0:
        if expires_at is None:
            detail = f"never expires; the workspace allows at most {max_days} days"
            found.append(FindingResult(Finding.EXCEEDS_WORKSPACE_MAX, detail))
        else:
            lifetime = expires_at - token.created_at
            if lifetime.days > max_days or (lifetime.days == max_days and lifetime % _DAY):
                detail = f"lifetime of {_ceil_days(lifetime)} days; the workspace allows at most {max_days}"
                found.append(FindingResult(Finding.EXCEEDS_WORKSPACE_MAX, detail))
    if expires_at is None:
        found.append(_NO_EXPIRY)
    if token.owner_kind == "service_principal":
        found.append(_SERVICE_PRINCIPAL)

    comment = token.comment.strip() if token.comment else ""
    if not comment:
        found.append(_NO_COMMENT)
    elif rules.junk is not None:
        match = rules.junk.search(comment)
        if match is not None:
            detail = f'comment "{_shorten(comment)}" looks like a placeholder ("{match.group(0)}")'
            found.append(FindingResult(Finding.JUNK_COMMENT, detail))
    return tuple(found)
