"""Control characters in user text (token comments, event ids, names): a terminal runs them (ESC
sequences clear the screen or forge links), a log reader takes a newline for a new record.
Terminals get the text without them (`strip`), logs get them written out (`escape`)."""

from __future__ import annotations

import re

# C0, DEL, C1, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACING = frozenset("\t\n\r\x0b\x0c\x85\u2028\u2029")  # become one space when stripped


def strip(text: str, *, keep: str = "") -> str:
    """The text for a terminal: line breaks and tabs as spaces, other control characters removed;
    those in `keep` stay (LF for text of several lines, CR and LF for a quoted CSV cell)."""
    if text.isprintable():  # the usual case, and a fast one
        return text
    return _CONTROL.sub(lambda match: _stripped(match.group(), keep), text)


def _stripped(char: str, keep: str) -> str:
    if char in keep:
        return char
    return " " if char in _SPACING else ""


def escape(text: str) -> str:
    r"""The text for a log line: each control character written out (`\n`, `\x1b`, `\u2028`)."""
    return _CONTROL.sub(_written_out, text)


def _written_out(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
