"""Words the services decide and the Slack builders show: why an overdue token was held back, why
a principal belongs to a Slack user, how far ahead the digest looks.

They live apart from the services that produce them so that the builders under `bot/slack/blocks/`
can name them without importing a service, which would reach the database. This module imports
nothing of bot's."""

from __future__ import annotations

from enum import StrEnum

HORIZON_DAYS = 14  # the digest's upcoming deadlines are those due within this many days


class HeldReason(StrEnum):
    """Why an overdue token was not revoked this run (bot/services/overdue.py)."""

    STALE_SYNC = "stale_sync"
    HOLD = "hold"
    RECENT_USE = "recent_use"
    CLOCK_SKEW = "clock_skew"
    BREAKER = "breaker"
    DRY_RUN_RECORDED = "dry_run_recorded"


class MatchReason(StrEnum):
    """Why a principal belongs to a Slack user (bot/services/recipients.py)."""

    EMAIL = "email"  # the same email, case aside
    MAPPED_DOMAIN = "mapped_domain"  # the same name at a domain `slack.email_domains_map` maps
    ADMIN_ASSIGNED = "admin_assigned"  # an admin's `/tokens owner` (service principals)
    EARLIER_LOOKUP = "earlier_lookup"  # cached from a lookup whose email no longer matches
