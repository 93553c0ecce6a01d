"""How much one message or view may hold, and a budget builders spend as they add blocks.

Slack refuses a message over 50 blocks (`invalid_blocks`) or whose blocks hold too much text in
total (`msg_blocks_too_long`), and a view over 100 blocks or too large (`view_too_large`). Every
builder that lists things (reminders, the digest, `/tokens` pages, the App Home) adds entries while
`Budget.take` allows, then says how many did not fit and where to see them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
# Total block text of a message: Slack refuses from about 12,000 characters (slackapi/bolt-js #2509)
# and #2867 saw a refusal at 11,341, so tokenbot keeps well below.
MESSAGE_TEXT = 10_000
# A view's limit (`view_too_large`) is not published; tokenbot keeps a Home tab to about two
# messages' worth.
VIEW_TEXT = 20_000
MORE_LINE_TEXT = 400  # room kept for the line that says what did not fit


def text_size(blocks: Sequence[Block | dict[str, Any]] | dict[str, Any]) -> int:
    """Characters of every `text` string in the blocks, the way Slack's total is measured."""
    if isinstance(blocks, Block):
        return text_size(blocks.to_dict())
    if isinstance(blocks, dict):
        return sum(
            len(value) if key == "text" and isinstance(value, str) else text_size(value)
            for key, value in blocks.items()
        )
    if isinstance(blocks, list | tuple):
        return sum(text_size(item) for item in blocks)
    return 0


class Budget:
    """What is left of one message's (or view's) blocks and text; `keep` holds room back for a
    closing line."""

    def __init__(
        self,
        *,
        blocks: int = MESSAGE_BLOCKS,
        text: int = MESSAGE_TEXT,
        spent: Sequence[Block] = (),
        keep_blocks: int = 1,
        keep_text: int = MORE_LINE_TEXT,
    ) -> None:
        self.blocks = blocks - len(spent) - keep_blocks
        self.text = text - text_size(list(spent)) - keep_text

    @classmethod
    def for_view(cls, *, spent: Sequence[Block] = (), keep_blocks: int = 1) -> Budget:
        return cls(blocks=VIEW_BLOCKS, text=VIEW_TEXT, spent=spent, keep_blocks=keep_blocks)

    def take(self, new: Sequence[Block]) -> bool:
        """Spend room for `new` and say True, or leave the budget as it was and say False."""
        size = text_size(list(new))
        if len(new) > self.blocks or size > self.text:
            return False
        self.blocks -= len(new)
        self.text -= size
        return True
