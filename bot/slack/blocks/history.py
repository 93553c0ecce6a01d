"""A decision as the messages show it: its verb ("Revoked"), its status in words, and one line of a
token's or a person's history (`/tokens show`, the App Home)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.enums import DecisionAction
from bot.slack.blocks.answers import person
from bot.slack.blocks.fit import clip
from bot.slack.blocks.text import code, escape, local_day, scopes_text, short_id, zone

VERBS = {
    DecisionAction.REVOKE: "Revoked",
    DecisionAction.ACCEPT: "Accepted",
    DecisionAction.CONFIRM_SCOPES: "Scopes confirmed",
    DecisionAction.RESTORE: "Scopes restored",
    DecisionAction.EXTEND: "Extended",
    DecisionAction.ROTATE: "Rotated into its secret",
    DecisionAction.SNOOZE: "Snoozed",
    DecisionAction.NOT_MINE: "Handed to the admins",
    DecisionAction.ASSIGN_OWNER: "Owner assigned",
}


class DecisionFacts(Protocol):
    """What a history line shows of a decision (a `bot.models.Decision` row has it all)."""

    action: str
    status: str
    actor_slack_id: str
    parameters: dict[str, Any]
    error: str | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """A decision with the token it was about, for histories and the App Home."""

    decision: DecisionFacts
    workspace: str | None
    token_id: str | None


STATUS_WORDS = {
    "requested": "waiting for an admin",
    "approved": "approved",
    "applied": "done",
    "failed": "failed",
    "denied": "denied",
    "refused": "refused",
}


def decision_line(entry: HistoryEntry, tz: str, with_token: bool = True) -> str:
    """• 7 Dec 2026 14:03 · Revoked · done · by @ada (admin): "reason"."""
    decision = entry.decision
    parameters = decision.parameters or {}
    when = decision.updated_at or decision.created_at
    stamp = f"{local_day(when, tz)} {when.astimezone(zone(tz)):%H:%M}" if when else "?"
    verb = VERBS.get(decision.action, decision.action.replace("_", " ").capitalize())
    who = "tokenbot" if decision.actor_slack_id == "tokenbot" else person(decision.actor_slack_id)
    parts = [stamp, verb]
    if with_token and entry.token_id:
        parts.append(f"{code(short_id(entry.token_id))} in *{escape(entry.workspace or '?')}*")
    parts.append(f"{STATUS_WORDS.get(decision.status, escape(decision.status))} · by {who}")
    details = []
    if parameters.get("days"):
        details.append(f"{escape(str(parameters['days']))} days")
    if parameters.get("scopes") and isinstance(parameters["scopes"], list):
        details.append(scopes_text(str(s) for s in parameters["scopes"]))
    if parameters.get("owner_slack_id"):
        details.append(f"owner {person(str(parameters['owner_slack_id']))}")
    if parameters.get("reason"):
        details.append(f"“{escape(clip(str(parameters['reason']), 80))}”")
    if parameters.get("refused"):
        details.append(f"({escape(str(parameters['refused']).replace('_', ' '))})")
    if parameters.get("dry_run"):
        details.append("(dry run)")
    if decision.error:
        details.append(f"error: {escape(clip(decision.error, 80))}")
    return "• " + " · ".join(parts) + (": " + ", ".join(details) if details else "")
