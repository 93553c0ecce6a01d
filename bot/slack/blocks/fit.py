"""Text cut to Slack's per-field limits, after escaping, never inside an entity or a mention.

Builders escape user text first (`blocks.escape`), then every text field goes through `fit` with
its limit: one place, so `&amp;` is never left as `&am` and `<@U123>` never as `<@U1`, and no field
ever exceeds what Slack accepts (`invalid_blocks`, or slack_sdk refusing to build the block).
"""

from __future__ import annotations

import re

from slack_sdk.models.blocks import ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

# Slack's limits, in characters (Block Kit reference; APIS.md "Block Kit limits").
SECTION_TEXT = 3000
CONTEXT_TEXT = 3000
FIELD_TEXT = 2000
HEADER_TEXT = 150
BUTTON_TEXT = 75
OPTION_TEXT = 75
CONFIRM_TITLE = 100
CONFIRM_TEXT = 300
MORE = "…"

# What must stay whole: the three entities `escape` writes, and Slack's `<...>` mentions and links.
_WHOLE = re.compile(r"&(?:amp|lt|gt);|<[^<>\n]*>")


def fit(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and "…", cut before any entity,
    mention or link the cut would split."""
    if len(text) <= limit:
        return text
    cut = limit - len(MORE)
    for match in _WHOLE.finditer(text):
        if match.start() >= cut:
            break
        if match.end() > cut:
            cut = match.start()
            break
    return text[:cut] + MORE


def clip(text: str, limit: int) -> str:
    """At most `limit` characters of one line of raw text (clip before escaping; `fit` after)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + MORE


def mrkdwn(text: str, limit: int = SECTION_TEXT) -> MarkdownTextObject:
    """A mrkdwn text object, fitted. `verbatim` keeps Slack from turning bare URLs and channel names
    in user text into links; tokenbot's own `<@U…>`, `<#C…>` still work (Block Kit text object
    reference: "verbatim")."""
    return MarkdownTextObject(text=fit(text, limit), verbatim=True)


def section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(block_id=block_id, text=mrkdwn(text, SECTION_TEXT))


def context(text: str, block_id: str | None = None) -> ContextBlock:
    return ContextBlock(block_id=block_id, elements=[mrkdwn(text, CONTEXT_TEXT)])


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=fit(text, HEADER_TEXT))
