"""A local Slack: the Web API that the real slack_sdk/slack_bolt clients call, its Socket Mode
server, and a driver that plays Slack toward the bot. `SlackSandbox` is the one to use:

* state.py: the workspace (users, channels, messages, views, files) and its helpers;
* web_api.py: the Web API method handlers; blockkit.py and elements.py: Block Kit as Slack checks
  and reports it; limits.py: Slack's published (and observed) limits and rate limits;
* driver.py: signed commands, clicks, submissions and Home tab opens sent to the bot;
* socket_mode.py: Slack's side of Socket Mode; sandbox.py: the server that puts them together.
"""

from bot.sandbox.slack.blockkit import validate_blocks, validate_view
from bot.sandbox.slack.driver import DriverResponse, sign
from bot.sandbox.slack.sandbox import DEFAULT_SCOPES, SlackSandbox

__all__ = ["DEFAULT_SCOPES", "DriverResponse", "SlackSandbox", "sign", "validate_blocks", "validate_view"]
