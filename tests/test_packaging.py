"""The files a new admin meets first: the Slack manifest and the container image recipe."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_manifest_is_a_valid_socket_mode_app_with_the_tokens_command():
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    assert set(manifest) >= {"_metadata", "display_information", "features", "oauth_config", "settings"}
    features = manifest["features"]
    assert features["app_home"]["home_tab_enabled"] and features["app_home"]["messages_tab_enabled"]
    assert [c["command"] for c in features["slash_commands"]] == ["/tokens"]
    assert features["slash_commands"][0]["usage_hint"]
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert len(manifest["display_information"]["description"]) <= 139  # Slack's limit


def test_every_bot_scope_says_why_it_is_there():
    text = (ROOT / "manifest.yml").read_text()
    scopes = yaml.safe_load(text)["oauth_config"]["scopes"]["bot"]
    explained = {
        line.split("#")[0].strip().removeprefix("- ").strip()
        for line in text.splitlines()
        if line.strip().startswith("- ") and "#" in line
    }
    assert set(scopes) <= explained
    assert "chat:write" in scopes and "users:read.email" in scopes
    assert not {"admin", "channels:history", "im:history", "chat:write.public"} & set(scopes)


def test_dockerfile_runs_as_non_root_with_a_healthcheck_and_a_data_volume():
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM ") == 2  # multi-stage
    assert "USER tokenbot" in text
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'ENTRYPOINT ["tokenbot"]' in text and 'CMD ["serve"]' in text
    assert 'VOLUME ["/data"]' in text
