"""Logging: one setup function, human-readable text or JSON lines, and redaction of secrets.

The redaction runs in the formatter, on the finished line (message, arguments and traceback
together), so nothing that looks like a Databricks token, a Slack token or a configured secret
reaches any output, whoever logged it. The formatter also writes out control characters in the
message (`\n` for a newline, `\x1b` for ESC): a value someone sent, such as an event id, cannot
start a forged log line or drive the reader's terminal. Tracebacks keep their lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from bot import controls

REDACTED = "[REDACTED]"

_TOKEN_PATTERNS = re.compile(
    r"dapi[0-9a-f]{16,}(?:-\d+)?"  # Databricks personal access token
    r"|dose[0-9a-f]{16,}"  # Databricks OAuth secret
    r"|xox[abposre]-[A-Za-z0-9-]{6,}"  # Slack bot, user, app-level config tokens
    r"|xapp-[A-Za-z0-9-]{6,}",  # Slack app-level token (Socket Mode)
    re.IGNORECASE,
)


class Redactor:
    """Replaces token-shaped strings and the configured secret values with [REDACTED]."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is removed whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _TOKEN_PATTERNS.sub(REDACTED, text)
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class TextFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
        self._redact = redactor

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = controls.escape(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": controls.escape(record.getMessage()),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self._redact(json.dumps(line, default=str))


def _drop_host_metadata_probe(record: logging.LogRecord) -> bool:
    """The SDK warns when a workspace has no /.well-known/databricks-config and then uses the
    explicit configuration, which is what tokenbot gives it: not worth a warning on every client."""
    return not record.getMessage().startswith("Failed to automatically resolve config from host metadata")


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once for the whole process (CLI commands, the server, jobs)."""
    redactor = Redactor(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(redactor) if fmt == "json" else TextFormatter(redactor))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries stay at WARNING unless we debug.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    sdk_logger = logging.getLogger("databricks.sdk")
    if level != "DEBUG" and _drop_host_metadata_probe not in sdk_logger.filters:
        sdk_logger.addFilter(_drop_host_metadata_probe)
    for name in ("urllib3", "databricks.sdk", "slack_bolt", "slack_sdk", "apscheduler", "alembic"):
        logging.getLogger(name).setLevel(max(quiet, root.level))
