"""A misuse finding in the admins channel: what was seen, the evidence, and Acknowledge / Revoke
(each button carries only `m<finding id>`; who may act is checked on the server). Once acted on,
the buttons give way to who did what. Every value from the audit log is user text: escaped."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ConfirmObject

from bot.domain.misuse import MisuseKind
from bot.enums import MisuseStatus
from bot.slack.blocks import fit
from bot.slack.blocks.fit import clip, context, header, section
from bot.slack.blocks.text import code, escape, local_time, short_id
from bot.slack.ids import Action

if TYPE_CHECKING:
    from bot.services.misuse import MisuseNotice

TITLES = {
    MisuseKind.NEW_NETWORK: "Token used from a new network",
    MisuseKind.NEW_CLIENT: "Token used by a new client",
    MisuseKind.MANY_CLIENTS: "One token, many clients in one day",
    MisuseKind.MANY_NETWORKS: "One token, many networks in one day",
    MisuseKind.FAILED_LOGINS: "Failed logins with a token",
    MisuseKind.OWNER_DEACTIVATED: "Token used after its owner was deactivated",
}


def reference(finding_id: int) -> str:
    return f"m{finding_id}"


def finding_id(value: str | None) -> int:
    """The finding a button names, or 0 (no such finding) for anything else."""
    if value and value.startswith("m") and value[1:].isdigit() and len(value) < 20:
        return int(value[1:])
    return 0


def _names(values: Any) -> str:
    """A list of names, or of {name, calls|failures}, as escaped text."""
    if not isinstance(values, list):
        return escape(str(values))
    parts = []
    for value in values[:10]:
        if isinstance(value, dict):
            count = value.get("calls", value.get("failures"))
            parts.append(f"{escape(clip(str(value.get('name')), 60))} ({count})")
        else:
            parts.append(escape(clip(str(value), 60)))
    return ", ".join(parts) or "none"


def _shown(key: str, value: Any) -> Any:
    """An evidence value as text: times in UTC words, other text escaped."""
    if not isinstance(value, str):
        return value
    if key in ("first_seen", "last_seen"):
        try:
            return local_time(datetime.fromisoformat(value.replace("Z", "+00:00")), "UTC")
        except ValueError:
            pass
    return escape(value)


def evidence_lines(notice: MisuseNotice) -> list[str]:
    e = {key: _shown(key, value) for key, value in notice.evidence.items()}
    kind = notice.kind
    lines: list[str] = []
    if kind in (MisuseKind.NEW_NETWORK, MisuseKind.NEW_CLIENT):
        what = "network" if kind is MisuseKind.NEW_NETWORK else "client"
        other = "clients" if what == "network" else "networks"
        lines.append(
            f"New {what}: *{fit.fit(str(e.get(what)), 100)}*, first seen {e.get('first_seen')}, "
            f"last {e.get('last_seen')}, {e.get('calls')} calls, by {_names(notice.evidence.get(other))}"
        )
        lines.append(f"Known before: {_names(notice.evidence.get(f'known_{what}s'))}")
        if e.get("agents"):
            lines.append(f"User agent: {_names(notice.evidence.get('agents'))}")
    elif kind in (MisuseKind.MANY_CLIENTS, MisuseKind.MANY_NETWORKS):
        name = "clients" if kind is MisuseKind.MANY_CLIENTS else "networks"
        lines.append(
            f"On {e.get('day')}: {e.get('distinct')} {name} (more than {e.get('threshold')}): "
            f"{_names(notice.evidence.get(name))}"
        )
    elif kind is MisuseKind.FAILED_LOGINS:
        lines.append(
            f"On {e.get('day')}: {e.get('failures')} failed logins (more than {e.get('threshold')}), "
            f"{e.get('first_seen')} to {e.get('last_seen')}, from {_names(notice.evidence.get('networks'))}"
        )
    elif kind is MisuseKind.OWNER_DEACTIVATED:
        lines.append(
            f"Owner deactivated; last used {e.get('last_seen')} ({e.get('calls')} calls) "
            f"by {_names(notice.evidence.get('clients'))} from {_names(notice.evidence.get('networks'))}"
        )
    return lines


def finding_message(notice: MisuseNotice) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of one finding."""
    title = TITLES.get(notice.kind, "Possible token misuse")
    token = f"{code(short_id(notice.token_id))} in *{escape(notice.workspace)}*"
    if notice.known_token:
        comment = escape(clip(notice.comment, 80)) if notice.comment.strip() else "_no comment_"
        owner = (
            f"<@{notice.owner_slack_id}>"
            if notice.owner_slack_id
            else escape(notice.owner or "unknown owner")
        )
        if notice.owner_active is False:
            owner += " (deactivated)"
        about = f"Token {token} ({comment}), owned by {owner}"
    else:
        about = f"Token {token}: not in tokenbot's inventory (revoked, or never listed)"
    body = "\n".join([about, *evidence_lines(notice)])
    blocks: list[Block] = [header(f":rotating_light: {title}"), section(fit.fit(body, fit.SECTION_TEXT))]
    if notice.status == MisuseStatus.OPEN:
        blocks.append(_buttons(notice))
    else:
        verb = "Acknowledged" if notice.status == MisuseStatus.ACKNOWLEDGED else "Revoked"
        blocks.append(context(f"{verb} by <@{notice.acted_by}>."))
    blocks.append(context("From the audit log at tokenbot's last usage refresh. Only admins can act on it."))
    return f"{title}: token {short_id(notice.token_id)} in {notice.workspace}", blocks


def _buttons(notice: MisuseNotice) -> ActionsBlock:
    value = reference(notice.finding_id)
    elements = [ButtonElement(text="Acknowledge", action_id=Action.MISUSE_ACKNOWLEDGE, value=value)]
    if notice.known_token:
        elements.append(
            ButtonElement(
                text="Revoke",
                action_id=Action.MISUSE_REVOKE,
                value=value,
                style="danger",
                confirm=ConfirmObject(
                    title="Revoke this token?",
                    text=fit.fit(
                        f"Token {short_id(notice.token_id)} in {escape(notice.workspace)} stops working "
                        "at once. Jobs that use it will fail.",
                        fit.CONFIRM_TEXT,
                    ),
                    confirm="Revoke",
                    deny="Keep it",
                    style="danger",
                ),
            )
        )
    return ActionsBlock(block_id=f"misuse:{value}", elements=elements)
