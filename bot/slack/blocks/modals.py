"""Pure builders of the modals behind the buttons: confirm scopes, extend, restore scopes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticMultiSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.deadlines import DEADLINE_LABELS, DeadlineKind
from bot.domain.scopes import PRIVILEGED_SCOPES, SCOPES
from bot.slack.blocks import fit, shadow
from bot.slack.blocks.fit import clip, context, section
from bot.slack.blocks.reminders import COMMENT_CHARS
from bot.slack.blocks.text import code, escape, local_time, scopes_text, short_id
from bot.slack.ids import Block
from bot.slack.ids import View as ViewId

if TYPE_CHECKING:
    from bot.services.report import TokenView

SCOPE_ACTION = "choose"
DAYS_ACTION = "days"
REASON_ACTION = "reason"


def metadata(reference: str, channel: str | None, ts: str | None) -> str:
    """What the submission needs to find its way back: the button's reference and its message."""
    return json.dumps({"ref": reference, "channel": channel, "ts": ts})


def _scope_options(preselected: Iterable[str]) -> list[Option]:
    """The whole catalogue, plus any pre-selected scope it does not know (kept, never dropped)."""
    options = [
        Option(value=scope.name, text=fit.fit(f"{scope.name}: {scope.label}", fit.OPTION_TEXT))
        for scope in SCOPES
    ]
    known = {scope.name for scope in SCOPES}
    options += [
        Option(value=name, text=fit.fit(f"{name} (not in the catalogue)", fit.OPTION_TEXT))
        for name in preselected
        if name not in known
    ]
    return options[:100]


def _privileged() -> str:
    return ", ".join(code(scope) for scope in sorted(PRIVILEGED_SCOPES))


def _token_summary(view: TokenView) -> SectionBlock:
    comment = escape(clip(view.comment, COMMENT_CHARS)) if view.comment else "_no comment_"
    return section(
        f"*{comment}* · {code(short_id(view.token_id))} in *{escape(view.workspace)}*\n"
        f"Scopes now: {scopes_text(view.scopes)}\n"
        f"Auto-scoping observed: {scopes_text(view.inferred_scopes)}"
    )


def _scopes_input(preselected: list[str], label: str) -> InputBlock:
    options = _scope_options(preselected)
    initial = [option for option in options if option.value in set(preselected)]
    return InputBlock(
        block_id=Block.SCOPES,
        label=label,
        element=StaticMultiSelectElement(
            action_id=SCOPE_ACTION,
            placeholder="Choose scopes",
            options=options,
            initial_options=initial or None,
        ),
    )


def confirm_scopes(view: TokenView, preselected: list[str], private_metadata: str) -> View:
    return View(
        type="modal",
        callback_id=ViewId.CONFIRM_SCOPES,
        title="Confirm scopes",
        submit="Apply",
        close="Cancel",
        private_metadata=private_metadata,
        blocks=[
            _token_summary(view),
            _scopes_input(preselected, "Scopes this token keeps"),
            *shadow.modal_reasons(view, preselected),
            context(
                "Setting scopes by hand ends auto-scoping for this token, and takes up "
                f"to 10 minutes to take effect. {_privileged()} need an admin's approval."
            ),
        ],
    )


def restore_scopes(view: TokenView, lost: list[str], private_metadata: str) -> View:
    return View(
        type="modal",
        callback_id=ViewId.RESTORE_SCOPES,
        title="Restore scopes",
        submit="Restore",
        close="Cancel",
        private_metadata=private_metadata,
        blocks=[
            _token_summary(view),
            _scopes_input(lost, "Scopes to add back"),
            context(
                "Auto-scoping narrowed this token. The scopes chosen here are added to "
                "the ones it has now; privileged scopes need an admin's approval."
            ),
        ],
    )


def extend(view: TokenView, kind: DeadlineKind, due_label: str, max_days: int, private_metadata: str) -> View:
    return View(
        type="modal",
        callback_id=ViewId.EXTEND,
        title="Extend",
        submit="Extend",
        close="Cancel",
        private_metadata=private_metadata,
        blocks=[
            section(
                f"{DEADLINE_LABELS[kind]} of {code(short_id(view.token_id))} in "
                f"*{escape(view.workspace)}* is due {due_label}."
            ),
            InputBlock(
                block_id=Block.DAYS,
                label="Days to add",
                element=NumberInputElement(
                    action_id=DAYS_ACTION,
                    is_decimal_allowed=False,
                    initial_value=str(min(7, max_days)),
                    min_value="1",
                    max_value="365",
                ),
            ),
            InputBlock(
                block_id=Block.REASON,
                label="Why",
                element=PlainTextInputElement(
                    action_id=REASON_ACTION,
                    multiline=True,
                    max_length=500,
                    placeholder="e.g. quarter-close job runs on the 3rd",
                ),
            ),
            context(f"Up to {max_days} days apply at once; longer needs an admin's approval."),
        ],
    )


def due_label(view: TokenView, kind: DeadlineKind, tz: str | None) -> str:
    for deadline in view.evaluation.deadlines:
        if deadline.kind is kind:
            return local_time(deadline.due_at, tz)
    return "soon"
