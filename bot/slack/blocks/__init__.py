"""Pure Block Kit builders (STYLE.md 3): facts in, `slack_sdk.models` blocks and safe mrkdwn out.

Nothing here talks to Slack or reads the database; tests call the builders directly and
`to_dict()` checks Slack's limits. User text (token comments, names) is escaped exactly once, so
it can never mention `<!channel>` or anyone else. One module per surface: `reminders`,
`outcomes` (after a decision), `answers` and `commands` (`/tokens`), `history` (decisions as
shown), `home`, `modals`, `digest`, `narrowing`, `escalations` (the admins channel's reminder,
every token shown), `enforcement`, `chart`; `text`, `fit` and
`budget` are what they share.

The names most callers need are here: `from bot.slack import blocks; blocks.escape(...)`.
"""

from bot.slack.blocks.outcomes import (
    approval_request,
    outcome_blocks,
    owner_wanted,
    request_wording,
    resolved,
    token_line,
)
from bot.slack.blocks.reminders import Annotation, reminder_message, token_blocks
from bot.slack.blocks.text import (
    ZERO_WIDTH_SPACE,
    as_text,
    code,
    escape,
    escape_entities,
    local_day,
    local_time,
    relative,
    safe_text,
    scopes_text,
    short_id,
    zone,
)

__all__ = [
    "ZERO_WIDTH_SPACE",
    "Annotation",
    "approval_request",
    "as_text",
    "code",
    "escape",
    "escape_entities",
    "local_day",
    "local_time",
    "outcome_blocks",
    "owner_wanted",
    "relative",
    "reminder_message",
    "request_wording",
    "resolved",
    "safe_text",
    "scopes_text",
    "short_id",
    "token_blocks",
    "token_line",
    "zone",
]
