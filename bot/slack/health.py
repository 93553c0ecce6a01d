"""Is Slack usable? The readiness probe of `serve --http` (is the bot's token still accepted?) and
the Slack checks of `tokenbot doctor` (auth, granted scopes, channels), each saying what to fix."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

logger = logging.getLogger(__name__)

# Slack's answers that mean the token itself is no good: only a new token or a reinstall helps.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "org_login_required"}
)
READINESS_TTL = 30.0  # seconds between auth.test calls when /readyz is polled

Check = tuple[str, bool | None, str]  # (name, ok / fix / note, detail or what to fix)


class SlackAuthCheck:
    """`WebApp(readiness=...)`: not ready once Slack refuses the bot's token (say it was revoked),
    with the reason in the logs. Other Slack trouble (a network blip, a rate limit) is logged but
    leaves the replica ready: restarting it would not help. `admin_problem` (AdminCheck.problem) adds
    why the admin group cannot be read, if it cannot: still ready, but the admins are fewer."""

    def __init__(
        self,
        client: WebClient,
        ttl: float = READINESS_TTL,
        monotonic: Callable[[], float] = time.monotonic,
        admin_problem: Callable[[], str | None] | None = None,
    ) -> None:
        self._client = client
        self._admin_problem = admin_problem
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._result: tuple[bool, str] = (True, "ready")

    def __call__(self) -> tuple[bool, str]:
        ready, detail = self._slack_auth()
        problem = self._admin_problem() if self._admin_problem is not None else None
        return ready, f"{detail}; {problem}" if problem else detail

    def _slack_auth(self) -> tuple[bool, str]:
        with self._lock:
            if self._checked_at is not None and self._monotonic() - self._checked_at < self._ttl:
                return self._result
            self._result = self._check()
            self._checked_at = self._monotonic()
            return self._result

    def _check(self) -> tuple[bool, str]:
        try:
            self._client.auth_test()
        except SlackApiError as error:
            code = error.response.get("error") or f"HTTP {error.response.status_code}"
            if code in AUTH_ERRORS:
                logger.error(
                    "readiness: Slack refuses the bot token (%s): it was revoked or is wrong; reinstall "
                    "the app and set SLACK_BOT_TOKEN to its new Bot User OAuth Token",
                    code,
                )
                return False, f"not ready: Slack refuses the bot token ({code})"
            logger.warning("readiness: Slack answered %s to auth.test", code)
            return True, f"ready (Slack answered {code})"
        except Exception as error:  # network trouble: not the replica's fault
            logger.warning("readiness: cannot reach Slack: %s", type(error).__name__)
            return True, "ready (Slack unreachable)"
        return True, "ready"


# ---------------------------------------------------------------------------------------------
# doctor


def doctor_checks(
    client: WebClient, *, manifest_scopes: Iterable[str] | None, channels: Mapping[str, str]
) -> list[Check]:
    """auth.test, the granted scopes against the manifest's, and each channel (its [slack] key ->
    its id, e.g. {"admin_channel": "C012ADMIN"})."""
    try:
        auth = client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error") or f"HTTP {error.response.status_code}"
        if code in AUTH_ERRORS:
            fix = (
                f"Slack refuses SLACK_BOT_TOKEN ({code}): copy the Bot User OAuth Token (xoxb-...) from the "
                "app's OAuth & Permissions page, or reinstall the app"
            )
        else:
            fix = f"auth.test failed ({code}); try again, or check Slack's status page"
        return [("slack auth", False, fix)]
    except Exception as error:
        return [
            ("slack auth", False, f"cannot reach Slack ({type(error).__name__}: {error}); check the network")
        ]
    checks: list[Check] = [
        (
            "slack auth",
            True,
            f"bot {auth.get('user')} ({auth.get('user_id')}) in workspace {auth.get('team')}",
        )
    ]
    checks.append(_scopes_check(_header(auth.headers, "x-oauth-scopes"), manifest_scopes))
    for key, channel in channels.items():
        checks.append(_channel_check(client, key, channel))
    return checks


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return None


def _scopes_check(granted_header: str | None, manifest_scopes: Iterable[str] | None) -> Check:
    if manifest_scopes is None:
        return (
            "slack scopes",
            None,
            "manifest.yml is not next to the installed package, so the granted scopes were not compared; "
            "run doctor from a checkout of the repository to compare them",
        )
    if granted_header is None:
        return (
            "slack scopes",
            None,
            "Slack did not say which scopes the token has (no x-oauth-scopes header)",
        )
    granted = {scope.strip() for scope in granted_header.split(",") if scope.strip()}
    wanted = set(manifest_scopes)
    missing = sorted(wanted - granted)
    if missing:
        return (
            "slack scopes",
            False,
            f"the bot lacks {', '.join(missing)}: add them under OAuth & Permissions (as in manifest.yml) "
            "and reinstall the app",
        )
    extra = sorted(granted - wanted)
    detail = f"all {len(wanted)} scopes of manifest.yml granted"
    return ("slack scopes", True, detail + (f" (also granted: {', '.join(extra)})" if extra else ""))


def _channel_check(client: WebClient, key: str, channel: str) -> Check:
    label = f"slack {key.replace('_', ' ')}"
    try:
        info = client.conversations_info(channel=channel)["channel"]
    except SlackApiError as error:
        code = error.response.get("error") or f"HTTP {error.response.status_code}"
        if code == "channel_not_found":
            fix = (
                f"{channel} does not exist, or is a private channel the bot is not in: check the id "
                f"(slack.{key}) and invite the bot"
            )
        elif code == "missing_scope":
            fix = "the bot cannot read channels: add channels:read and groups:read, then reinstall the app"
        else:
            fix = f"conversations.info answered {code}"
        return (label, False, fix)
    except Exception as error:
        return (label, False, f"cannot reach Slack ({type(error).__name__})")
    name = info.get("name") or channel
    if info.get("is_archived"):
        return (label, False, f"#{name} ({channel}) is archived: unarchive it or choose another channel")
    if not info.get("is_member"):
        return (label, False, f"the bot is not in #{name} ({channel}): type `/invite @tokenbot` there")
    return (label, True, f"#{name} ({channel}), the bot is a member")
