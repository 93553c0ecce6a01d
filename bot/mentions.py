"""How tokenbot's messages name people: one definition for the services, which write their
messages as plain text, and the Slack builders, which escape that text once and keep these names
as mentions (`bot.slack.blocks.safe_text`). No Slack library here: only the shape of the words.
"""

from __future__ import annotations

# A Slack user id (U… for people, W… for Enterprise Grid users).
SLACK_USER_ID = r"[UW][A-Z0-9]{2,}"
TOKENBOT = "tokenbot"  # the bot's own actor id: named as a word, never mentioned
UNKNOWN = "?"  # an actor nobody recorded


def mention(slack_id: str) -> str:
    """The person as a Slack mention (`<@U123>`)."""
    return f"<@{slack_id}>"


def who(slack_id: str) -> str:
    """The person who did something: a mention, or tokenbot and the unknown as words."""
    return slack_id if slack_id in (TOKENBOT, UNKNOWN) else mention(slack_id)
