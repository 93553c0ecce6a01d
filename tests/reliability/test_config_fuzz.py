"""Arbitrary TOML configuration never crashes tokenbot: it is either accepted or refused with
one line per problem (ConfigError), and the CLI turns those into exit code 2."""

from __future__ import annotations

import tomllib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import ConfigError, load_settings

KEYS = {
    "policy": ["reminder_days", "org_max_inactive_days", "quiet_hours", "junk_comment_patterns", "enforce",
               "max_gone_fraction", "autoscope_rollout_date", "unknown_key"],
    "slack": ["admins", "admin_group", "admin_channel", "digest_cron", "digest_timezone", "digest_chart"],
    "databricks": ["retry_timeout_seconds", "max_parallel_workspaces"],
}
scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(),
                    st.text(max_size=30), st.dates())
values = st.one_of(scalars, st.lists(scalars, max_size=4))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, "nan" if value != value else repr(value))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


@st.composite
def documents(draw) -> str:
    lines = []
    for section, keys in KEYS.items():
        chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=4))
        if chosen:
            lines.append(f"[{section}]")
            lines += [f"{key} = {toml_value(draw(values))}" for key in chosen]
    if draw(st.booleans()):
        lines.append(f'[[workspaces]]\nname = {toml_value(draw(st.text(max_size=12)))}\n'
                     f'host = {toml_value(draw(st.text(max_size=40)))}')
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.one_of(documents(), st.text(max_size=200)))
def test_any_configuration_is_accepted_or_refused_line_by_line(tmp_path, document):
    path = tmp_path / "fuzz.toml"
    path.write_text(document, encoding="utf-8")
    try:
        settings_ = load_settings({"TOKENBOT_CONFIG": str(path)})
    except ConfigError as error:
        assert error.problems and all(isinstance(p, str) and "\n" not in p for p in error.problems)
        return
    # accepted documents are valid TOML, as read in text mode (a lone CR reads as a line break)
    tomllib.loads(path.read_text(encoding="utf-8"))
    assert settings_.policy is not None
