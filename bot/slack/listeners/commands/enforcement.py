"""/tokens enforcement status|resume (admins): the enforcement breaker's state, or re-arm it.

The breaker lives in the database (`bot/services/breaker.py`); a resume is a decision row, and the
service checks the caller is an admin again whatever the dispatcher let through."""

from bot.db import session_scope
from bot.services import breaker
from bot.slack.blocks import enforcement
from bot.slack.blocks.answers import Usage, echo
from bot.slack.context import Deps
from bot.slack.ids import Subcommand
from bot.slack.listeners.commands.request import BadInput, CommandRequest

STATUS, RESUME = "status", "resume"
USAGE = Usage(
    Subcommand.ENFORCEMENT, f"{STATUS}|{RESUME}", "enforcement's breaker: its state, or re-arm it", admin=True
)


def handler(deps: Deps):
    def handle(request: CommandRequest) -> None:
        words = [word.lower() for word in request.words]
        if words not in ([STATUS], [RESUME]):
            raise BadInput(f"Say `{STATUS}` or `{RESUME}`, not {echo(request.arguments)}.")
        now = deps.now()
        with session_scope(deps.engine) as session:
            if words == [STATUS]:
                answer = enforcement.breaker_status(
                    breaker.state(session=session, now=now), deps.settings.policy
                )
            else:
                outcome = breaker.resume(session=session, actor=deps.actor(request.user_id), now=now)
                answer = enforcement.breaker_resumed(outcome, deps.settings.policy)
        request.reply(answer)

    return handle
