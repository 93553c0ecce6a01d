"""What is risky about a token: the finding codes, their labels and severity, and the rules that
find them (`find_risks`, run by `bot.domain.policy.evaluate`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from bot.domain.shadow import DeniedCall, Verdict
from bot.domain.tokens import TokenFacts

_AUTHENTICATION_SCOPE = "authentication"
_ALL_APIS_SCOPE = "all-apis"
_DAY = timedelta(days=1)


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
    API_NOT_COVERED = "api_not_covered"


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
        Finding.API_NOT_COVERED: "Uses an API no scope covers",
    }
)

# Worst first. find_risks() emits findings in this order.
_FINDINGS_WORST_FIRST: tuple[Finding, ...] = (
    Finding.PRIVILEGED_SCOPE,
    Finding.ORPHAN,
    Finding.OWNER_INACTIVE,
    Finding.ALL_APIS,
    Finding.RARE_API,
    Finding.API_NOT_COVERED,
    Finding.EXCEEDS_WORKSPACE_MAX,
    Finding.NO_EXPIRY,
    Finding.SERVICE_PRINCIPAL_TOKEN,
    Finding.JUNK_COMMENT,
)
# Finding -> rank, 0 = worst: `sorted(codes, key=FINDING_SEVERITY.__getitem__)` puts the worst first.
FINDING_SEVERITY: Mapping[Finding, int] = MappingProxyType(
    {code: rank for rank, code in enumerate(_FINDINGS_WORST_FIRST)}
)


@dataclass(frozen=True, slots=True)
class FindingResult:
    code: Finding
    detail: str


@lru_cache(maxsize=32)
def junk_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
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


def find_risks(
    token: TokenFacts,
    junk: re.Pattern[str] | None,
    observing: bool,
    rare_scopes: Mapping[str, date],
    denied: Sequence[DeniedCall] = (),
) -> tuple[FindingResult, ...]:
    """Findings in FINDING_SEVERITY order, worst first.

    `junk` is `junk_regex` of the policy's comment patterns; `observing` is `is_observing(token)`
    (while auto-scoping observes, `all-apis` is expected); `rare_scopes` and `denied` as for `evaluate`.
    """
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
    if denied:
        found.extend(_denied_findings(denied))
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
    elif junk is not None:
        match = junk.search(comment)
        if match is not None:
            detail = f'comment "{_shorten(comment)}" looks like a placeholder ("{match.group(0)}")'
            found.append(FindingResult(Finding.JUNK_COMMENT, detail))
    return tuple(found)


def call_evidence(call: DeniedCall) -> str:
    """`jobs.runNow x3, last 2026-09-11`, and whose calls they were when not the token's own."""
    text = f"{call.name} x{call.calls}, last {call.last_seen.date().isoformat()}"
    return text + " (by the owner, maybe with another token)" if call.approximate else text


def _denied_findings(denied: Sequence[DeniedCall]) -> list[FindingResult]:
    """One `rare_api` per scope the denied calls need (naming each call), then one `api_not_covered`."""
    by_scope: dict[str, list[DeniedCall]] = {}
    uncovered: list[DeniedCall] = []
    for call in denied:
        if call.verdict is Verdict.DENIED and call.scope:
            by_scope.setdefault(call.scope, []).append(call)
        elif call.verdict is Verdict.NOT_COVERED:
            uncovered.append(call)
    found = [
        FindingResult(
            Finding.RARE_API,
            "; ".join(call_evidence(c) for c in calls) + f": needs {scope}, which auto-scoping will not keep",
        )
        for scope, calls in sorted(by_scope.items())
    ]
    if uncovered:
        detail = "; ".join(call_evidence(c) for c in uncovered)
        detail += ": no scope allows it, manual scopes will not help"
        found.append(FindingResult(Finding.API_NOT_COVERED, detail))
    return found
