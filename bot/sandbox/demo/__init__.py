"""`tokenbot demo`: the whole story against local sandboxes, with no Slack workspace and no
Databricks account.

Two Databricks workspaces and a Slack workspace run on 127.0.0.1; the bot runs in this process,
in Socket Mode by default (it opens a WebSocket to the Slack sandbox, as `tokenbot serve` does) or
in HTTP mode on a real port (`--http`); a temporary SQLite database holds its records. The story
drives the bot the way Slack would (envelopes over the socket, or really signed HTTP requests, from
the Slack sandbox's driver) and runs the scheduled jobs by hand, then checks each step against what
it should have done.

stage.py sets the stage (sandboxes, seed, configuration, the bot), story.py plays the steps and
checks them, transcript.py prints what happened.
"""

from bot.sandbox.demo.story import Demo, run_demo
from bot.sandbox.demo.transcript import as_shown, delivered

__all__ = ["Demo", "as_shown", "delivered", "run_demo"]
