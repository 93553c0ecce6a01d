"""/tokens extend <token_id> <days> <reason>: an exemption from the organisation's own policy
deadline of that token (Databricks' own deadlines cannot be lengthened)."""

from bot.db import session_scope
from bot.domain.deadlines import DEADLINE_LABELS, DeadlineKind
from bot.services import decisions, report
from bot.slack.blocks import code, commands, escape, short_id
from bot.slack.blocks.answers import Usage
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest, find_token, whole_number
from bot.slack.listeners.common import ask_admins, refresh_token_messages

USAGE = Usage(
    Subcommand.EXTEND,
    "<token_id> <days> <reason>",
    "put off the organisation's policy deadline of a token",
    admin=True,
)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        parts = request.split(2)
        if len(parts) < 3:
            missing = ["the token id", "the number of days", "the reason"][len(parts)]
            raise BadInput(f"Missing {missing}.")
        given, days_text, reason = parts
        days = whole_number(days_text, "days", 1, decisions.EXTENSION_LIMIT_DAYS)
        now = deps.now()
        with session_scope(deps.engine) as session:
            token = find_token(session, given)
            views = report.token_views(
                session=session, policy=deps.settings.policy, now=now, token_pks=[token.id]
            )
            deadline = next(
                (d for v in views for d in v.evaluation.deadlines if d.kind is DeadlineKind.ORG_POLICY), None
            )
            if deadline is None:
                raise BadInput(_nothing_to_extend(token.token_id, token.workspace, views))
            outcome = decisions.extend(
                session=session,
                gateway_for=deps.gateway_for,
                actor=deps.actor(request.user_id),
                token_pk=token.id,
                deadline=decisions.DeadlineRef.of(deadline),
                days=days,
                reason=reason,
                policy=deps.settings.policy,
                secret_bindings=deps.settings.secret_bindings,
                dry_run=deps.settings.dry_run,
            )
        request.reply(commands.outcome(outcome.message))
        if outcome.status == decisions.REQUESTED and outcome.duplicate_of is None:
            ask_admins(deps, request.client, outcome)
        if outcome.token_pk:
            refresh_token_messages(deps, request.client, outcome.token_pk)

    return handle


def _nothing_to_extend(token_id: str, workspace: str, views) -> str:
    label = f"Token {code(short_id(token_id))} in *{escape(workspace)}*"
    if not views:
        return f"{label} is gone; there is nothing to extend."
    kinds = sorted({DEADLINE_LABELS[d.kind].lower() for d in views[0].evaluation.deadlines})
    what = f" (its deadlines: {', '.join(kinds)}; Databricks' own cannot be lengthened)" if kinds else ""
    return f"{label} has no deadline from the organisation's policy to extend{what}."
