"""The live checks of `tokenbot doctor`: Slack (auth, scopes against manifest.yml, channels) and
each Databricks workspace (reachable, credentials accepted, token management allowed, SCIM readable).

Each check is `(name, ok, detail)`: ok True, False (the detail says what to fix) or None (a note).
Calls are read-only and bounded: doctor waits seconds for a broken host, not the minutes of
retries the bot itself allows.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.config import Settings

Check = tuple[str, bool | None, str]
MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"  # the repository's root
DOCTOR_RETRY_SECONDS = 10
DOCTOR_HTTP_SECONDS = 10


def manifest_scopes(path: Path = MANIFEST) -> list[str] | None:
    """The bot scopes manifest.yml asks for; None when the file is not there (an installed package)."""
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return list(((manifest or {}).get("oauth_config") or {}).get("scopes", {}).get("bot") or [])


def live_checks(settings: Settings) -> list[Check]:
    return slack_checks(settings) + workspace_checks(settings)


def slack_checks(settings: Settings) -> list[Check]:
    if settings.slack_bot_token is None:
        return []  # the configuration checks already say to set it
    from bot.slack.client import make_client
    from bot.slack.health import doctor_checks

    channels = {
        key: channel
        for key, channel in (
            ("admin_channel", settings.slack.admin_channel),
            ("digest_channel", settings.slack.digest_channel),
        )
        if channel
    }
    client = make_client(settings, rate_limit_retries=2)
    client.timeout = DOCTOR_HTTP_SECONDS
    return doctor_checks(client, manifest_scopes=manifest_scopes(), channels=channels)


def workspace_checks(settings: Settings) -> list[Check]:
    from bot.databricks.gateway import SdkWorkspaceGateway
    from bot.databricks.records import GatewayError

    limits = settings.databricks.model_copy(
        update={
            "retry_timeout_seconds": min(settings.databricks.retry_timeout_seconds, DOCTOR_RETRY_SECONDS),
            "http_timeout_seconds": min(settings.databricks.http_timeout_seconds, DOCTOR_HTTP_SECONDS),
        }
    )
    checks: list[Check] = []
    for workspace in settings.workspaces:
        name = f"workspace {workspace.name}"
        try:
            probes = SdkWorkspaceGateway(workspace, limits).check_access()
        except GatewayError as error:
            checks.append((name, False, error.message))
            continue
        problems = [(what, problem) for what, problem in probes if problem]
        if not problems:
            passed = ", ".join(what for what, _ in probes)
            checks.append((name, True, f"{workspace.host}: {passed} ok"))
        for what, problem in problems:
            checks.append((f"{name}: {what}", False, problem))
    return checks
