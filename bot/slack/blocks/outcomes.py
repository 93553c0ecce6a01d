"""After a decision: the answer to the person who clicked, the admins' approval and owner
requests, and those requests once an admin has acted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, UserSelectElement

from bot import mentions
from bot.enums import DecisionAction
from bot.slack.blocks.fit import clip, context, section
from bot.slack.blocks.reminders import COMMENT_CHARS
from bot.slack.blocks.text import code, escape, safe_text, short_id
from bot.slack.ids import Action

if TYPE_CHECKING:
    from bot.services.decisions import Outcome

REQUEST_VERBS = {
    DecisionAction.CONFIRM_SCOPES: "set the scopes",
    DecisionAction.RESTORE: "add back the scopes",
    DecisionAction.EXTEND: "extend tokenbot's deadline",
}


def outcome_blocks(message: str, retry_reference: str | None = None) -> list[Block]:
    """The answer to the person who clicked (a service's plain message); a Retry button when
    Databricks failed."""
    blocks: list[Block] = [section(safe_text(message))]
    if retry_reference:
        blocks.append(
            ActionsBlock(
                elements=[ButtonElement(text="Retry", action_id=Action.RETRY, value=retry_reference)]
            )
        )
    return blocks


def approval_request(request_text: str, token_line: str, reference: str) -> tuple[str, list[Block]]:
    """Posted to the admins channel: a request only an admin may approve."""
    text = f"Approval needed: {request_text}"
    return text, [
        section(f":raised_hand: *Approval needed*\n{request_text}\n{token_line}"),
        ActionsBlock(
            block_id=f"approval:{reference}",
            elements=[
                ButtonElement(text="Approve", action_id=Action.APPROVE, value=reference, style="primary"),
                ButtonElement(text="Deny", action_id=Action.DENY, value=reference, style="danger"),
            ],
        ),
    ]


def owner_wanted(request_text: str, token_line: str, token_reference: str) -> tuple[str, list[Block]]:
    """Posted to the admins channel after "Not mine": pick the token's owner."""
    text = f"Owner wanted: {request_text}"
    return text, [
        section(f":mag: *Owner wanted*\n{request_text}\n{token_line}"),
        ActionsBlock(
            block_id=f"assign:{token_reference}",
            elements=[
                UserSelectElement(action_id=Action.ASSIGN_OWNER, placeholder="Pick the owner"),
            ],
        ),
    ]


def resolved(original_text: str, outcome_text: str) -> list[Block]:
    """An approval or owner request once an admin has acted: the buttons go, the answer (a
    service's plain message) stays. `original_text` is the request's own mrkdwn."""
    return [section(original_text), context(safe_text(outcome_text))]


def token_line(view_workspace: str, token_id: str, comment: str) -> str:
    return f"{code(short_id(token_id))} in *{escape(view_workspace)}*" + (
        f" · {escape(clip(comment, COMMENT_CHARS))}" if comment else ""
    )


def request_wording(outcome: Outcome) -> str:
    """What the admins are asked (or told, for "Not mine"): who, what, by how much, and why."""
    who = mentions.mention(outcome.actor_slack_id)
    parameters = outcome.parameters
    verb = REQUEST_VERBS.get(outcome.action, outcome.action.replace("_", " "))
    if outcome.action == DecisionAction.NOT_MINE:
        return f"{who} says this token is not theirs."
    detail = ""
    if parameters.get("scopes"):
        detail = " to " + ", ".join(code(s) for s in parameters["scopes"])
    if outcome.action == DecisionAction.EXTEND and parameters.get("days"):
        detail = f" by {parameters['days']} days"
        if parameters.get("until") and parameters.get("original_due_at"):
            # What the admins weigh: the end asked for against where the policy put the deadline.
            detail += (
                f", until {str(parameters['until'])[:10]} "
                f"(the policy's own deadline: {str(parameters['original_due_at'])[:10]})"
            )
    reason = parameters.get("reason")
    return (
        f"{who} asks: {verb}{detail}"
        + (f" (\u201c{escape(str(reason))}\u201d)" if reason else "")
        + "."
    )
