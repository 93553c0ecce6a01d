"""What will happen to a token, and when: the kinds of deadline, their labels, and `Deadline`.

Time conventions (`bot.domain.policy.evaluate` computes the deadlines):

- `due_at` is aware UTC;
- a deadline whose `due_at` is at or before `now` has passed (`Deadline.is_overdue(now)`);
  passed deadlines are still returned so the report and the enforcement job can see them;
- `Deadline.days_left(now)` is the whole days remaining, rounded down: 13 days 23 hours is 13,
  one hour overdue is -1 (exactly `now` is 0 and already overdue).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType


class DeadlineKind(StrEnum):
    AUTOSCOPE_ENFORCEMENT = "autoscope_enforcement"
    EXPIRY = "expiry"
    INACTIVITY_REVOCATION = "inactivity_revocation"
    ORG_POLICY = "org_policy"


DEADLINE_LABELS: Mapping[DeadlineKind, str] = MappingProxyType(
    {
        DeadlineKind.AUTOSCOPE_ENFORCEMENT: "Auto-scoping enforcement",
        DeadlineKind.EXPIRY: "Expiry",
        DeadlineKind.INACTIVITY_REVOCATION: "Revocation for inactivity",
        DeadlineKind.ORG_POLICY: "Organisation policy",
    }
)


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
