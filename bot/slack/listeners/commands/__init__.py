"""The `/tokens` command: the only place a subcommand word meets its handler.

One Slack listener for the command (`dispatch.handler`), and one module per subcommand; the
pager buttons of long answers (Previous/Next page) run the command again.
"""

from slack_bolt import App

from bot.slack.context import Deps
from bot.slack.first_clicks import FirstClicksFirst
from bot.slack.ids import COMMAND, Action
from bot.slack.listeners.commands import (
    digest,
    dispatch,
    enforcement,
    export,
    extend,
    help,
    mine,
    owner,
    policy,
    revoke,
    risky,
    show,
    stale,
    sync,
    upcoming,
    whois,
)
from bot.slack.listeners.lazy import soon

# In the order the help lists them.
SUBCOMMANDS = (
    help, mine, show, policy, upcoming, risky, stale, revoke, extend, owner, whois, sync, digest, export,
    enforcement,
)


def register(app: App, deps: Deps, work: FirstClicksFirst) -> None:
    routes = {module.USAGE.name: dispatch.Route(module.USAGE, module.handler(deps)) for module in SUBCOMMANDS}
    app.command(COMMAND)(soon(work, dispatch.handler(deps, routes)))
    app.action(Action.NEXT_PAGE)(soon(work, dispatch.page_handler(deps, routes)))
    app.action(Action.PREVIOUS_PAGE)(soon(work, dispatch.page_handler(deps, routes)))
