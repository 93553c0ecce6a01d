"""Local Databricks and Slack API servers that the real SDK clients talk to (tests and the demo)."""

from bot.sandbox.databricks import DatabricksSandbox
from bot.sandbox.slack import SlackSandbox

__all__ = ["DatabricksSandbox", "SlackSandbox"]
