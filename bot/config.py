"""Settings: the environment (credentials, database, switches) plus the TOML file (workspaces,
policy, Slack channels and admins).

`load_settings()` is the one way in. Every invalid value becomes one line that names the key,
the value and what is allowed, collected in a `ConfigError`; the CLI prints those lines and exits
2. Secrets are `SecretStr`: they never show in `repr`, logs or error messages.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.misuse import MisusePolicy
from bot.domain.policy import Policy, parse_quiet_hours

DEFAULT_CONFIG_FILE = "tokenbot.toml"
DEFAULT_DATABASE_URL = "sqlite:///tokenbot.db"

SlackUserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,}$")]
SlackChannelId = Annotated[str, StringConstraints(pattern=r"^[CG][A-Z0-9]{2,}$")]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
SCOPE_KEY_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}$"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})+$")  # an email's domain, e.g. corp.example


class ConfigError(Exception):
    """Configuration problems, one line each, ready to print."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _FileModel(BaseModel):
    # TOML has real types: "14" where a number is expected is a mistake worth reporting.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WorkspaceConfig(_FileModel):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")]
    host: str
    profile: str | None = None  # a ~/.databrickscfg profile
    token_env: EnvVarName | None = None  # env var holding a PAT for this workspace
    client_id_env: EnvVarName | None = None  # env vars holding OAuth M2M credentials
    client_secret_env: EnvVarName | None = None
    audit_warehouse_id: str | None = None  # SQL warehouse for system.access.audit queries

    @field_validator("host")
    @classmethod
    def _host_is_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be the workspace URL, such as https://adb-1234.5.azuredatabricks.net")
        return value.rstrip("/")


class MisuseConfig(_FileModel):
    """The `[policy.misuse]` table; mirrors `bot.domain.misuse.MisusePolicy`."""

    enabled: bool = True
    recent_days: int = Field(default=2, ge=1, le=30)
    min_history_days: int = Field(default=7, ge=0, le=365)
    new_network: bool = True
    new_client: bool = True
    max_clients_per_day: int = Field(default=3, ge=0, le=1000)
    max_networks_per_day: int = Field(default=3, ge=0, le=1000)
    max_failed_logins_per_day: int = Field(default=20, ge=0, le=1_000_000)
    owner_deactivated: bool = True
    allowed_networks: list[str] = Field(default_factory=list)

    @field_validator("allowed_networks")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(
                    f"{text!r} is not a network; write CIDR such as \"10.0.0.0/8\" or \"2001:db8::/32\""
                ) from None
        return value


class PolicyConfig(_FileModel):
    """The `[policy]` table; mirrors `bot.domain.policy.Policy` with the allowed ranges."""

    reminder_days: list[Annotated[int, Field(ge=1, le=365)]] = Field(default=[14, 7, 3, 1], min_length=1)
    autoscope_observation_days: int = Field(default=30, ge=1, le=365)
    inactivity_revocation_days: int = Field(default=90, ge=1, le=3650)
    org_max_inactive_days: int = Field(default=60, ge=0, le=3650)
    org_max_lifetime_days: int = Field(default=365, ge=0, le=3650)
    max_extension_days: int = Field(default=30, ge=1, le=365)
    max_total_extension_days: int = Field(default=60, ge=1, le=3650)
    request_hold_days: int = Field(default=3, ge=0, le=90)
    escalate_after_days: int = Field(default=3, ge=0, le=365)
    quiet_hours: str = "18:00-09:00"
    junk_comment_patterns: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default=["test", "tmp", "old", "do not delete"]
    )
    autoscope_rollout_date: date | None = None
    sync_interval_minutes: int = Field(default=60, ge=5, le=1440)
    enforce: bool = False
    max_revocations_per_run: int = Field(default=20, ge=0, le=10000)
    max_revocations_per_day: int = Field(default=50, ge=0, le=100000)
    enforce_min_idle_days: int = Field(default=7, ge=1, le=3650)
    usage_lookback_days: int = Field(default=180, ge=1, le=365)
    max_gone_fraction: float = Field(default=0.2, ge=0.0, le=1.0)
    rotation_grace_hours: int = Field(default=24, ge=0, le=720)
    rotation_lifetime_days: int = Field(default=90, ge=1, le=730)
    misuse: MisuseConfig = Field(default_factory=MisuseConfig)

    @field_validator("reminder_days")
    @classmethod
    def _distinct_days(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("days must not repeat")
        return sorted(value, reverse=True)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        parse_quiet_hours(value)  # raises ValueError with what is allowed
        return value

    @field_validator("max_gone_fraction", mode="before")
    @classmethod
    def _int_is_a_fraction(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _total_covers_one_click(self) -> PolicyConfig:
        if self.max_total_extension_days < self.max_extension_days:
            raise ValueError(
                f"max_total_extension_days ({self.max_total_extension_days}) must be at least "
                f"max_extension_days ({self.max_extension_days})"
            )
        return self

    def to_policy(self) -> Policy:
        values = self.model_dump()
        values["reminder_days"] = tuple(values["reminder_days"])
        values["junk_comment_patterns"] = tuple(values["junk_comment_patterns"])
        values["misuse"] = MisusePolicy(**values["misuse"])
        return Policy(**values)


class SlackConfig(_FileModel):
    admins: list[SlackUserId] = Field(default_factory=list)
    admin_group: Annotated[str, StringConstraints(pattern=r"^S[A-Z0-9]{2,}$")] | None = None
    admin_channel: SlackChannelId | None = None
    digest_channel: SlackChannelId | None = None
    digest_cron: str = "0 9 * * mon-fri"
    digest_timezone: str = "UTC"
    digest_chart: bool = False
    # Slack email domain -> Databricks email domain, for owners whose two emails differ by domain.
    email_domains_map: dict[str, str] = Field(default_factory=dict)

    @field_validator("email_domains_map")
    @classmethod
    def _domains(cls, value: dict[str, str]) -> dict[str, str]:
        mapped: dict[str, str] = {}
        for slack_domain, databricks_domain in value.items():
            for domain in (slack_domain, databricks_domain):
                if not DOMAIN.match(domain.strip().lower()):
                    raise ValueError(
                        f"{domain!r} is not an email domain: write the part after the @, such as "
                        f"{{ \"corp.example\" = \"example.com\" }} (Slack domain = Databricks domain)"
                    )
            slack_domain, databricks_domain = slack_domain.strip().lower(), databricks_domain.strip().lower()
            if slack_domain == databricks_domain:
                raise ValueError(f"{slack_domain!r} is mapped to itself: remove it, same emails match anyway")
            if slack_domain in mapped:
                raise ValueError(f"{slack_domain!r} is given twice (domains compare without case)")
            mapped[slack_domain] = databricks_domain
        return mapped

    @field_validator("digest_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as error:
            raise ValueError(
                f"must be a crontab line of five fields (minute hour day month weekday), "
                f"such as '0 9 * * mon-fri' ({error})"
            ) from None
        return value

    @field_validator("digest_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as 'UTC' or 'Europe/Paris'") from None
        return value


class DatabricksConfig(_FileModel):
    # The SDK's default retry timeout of 300 s is long for a bot that answers people.
    retry_timeout_seconds: int = Field(default=60, ge=1, le=3600)
    http_timeout_seconds: int = Field(default=30, ge=1, le=600)
    max_parallel_workspaces: int = Field(default=4, ge=1, le=64)


class SecretBinding(_FileModel):
    """Where a service principal's rotated token value goes (Extend = rotate)."""

    workspace: str
    application_id: str | None = None
    comment_pattern: str | None = None
    scope: Annotated[str, StringConstraints(pattern=SCOPE_KEY_PATTERN)]
    key: Annotated[str, StringConstraints(pattern=SCOPE_KEY_PATTERN)]

    @model_validator(mode="after")
    def _one_selector(self) -> SecretBinding:
        if not (self.application_id or self.comment_pattern):
            raise ValueError("needs application_id or comment_pattern to say which tokens it binds")
        if self.comment_pattern:
            try:
                re.compile(self.comment_pattern)
            except re.error as error:
                raise ValueError(f"comment_pattern is not a valid regular expression: {error}") from None
        return self


class Settings(BaseSettings):
    """Everything tokenbot is told: built once by the command (`bot/cli/`) and passed down, never a global."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_file=None)

    config_path: Path | None = Field(default=None, validation_alias="TOKENBOT_CONFIG")
    database_url: str = Field(default=DEFAULT_DATABASE_URL, validation_alias="TOKENBOT_DATABASE_URL")
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str | None = Field(default=None, validation_alias="TOKENBOT_SLACK_API_URL")
    webhook_secret: SecretStr | None = Field(default=None, validation_alias="TOKENBOT_WEBHOOK_SECRET")
    dry_run: bool = Field(default=False, validation_alias="TOKENBOT_DRY_RUN")
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="TOKENBOT_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="TOKENBOT_LOG_LEVEL"
    )

    # From the TOML file (never from the environment):
    workspaces: tuple[WorkspaceConfig, ...] = ()
    policy_config: PolicyConfig = Field(default_factory=PolicyConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    databricks: DatabricksConfig = Field(default_factory=DatabricksConfig)
    secret_bindings: tuple[SecretBinding, ...] = ()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("slack_api_url")
    @classmethod
    def _slack_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://", value):
            raise ValueError("must be an http(s) URL of the Slack Web API, such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("workspaces")
    @classmethod
    def _unique_workspaces(cls, value: tuple[WorkspaceConfig, ...]) -> tuple[WorkspaceConfig, ...]:
        names = [workspace.name for workspace in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"workspace names must be unique; repeated: {', '.join(repeated)}")
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_other_sources):
        # `load_settings` hands over the environment explicitly, so a test or the demo can pass
        # its own mapping and nothing is read behind its back.
        return (init_settings,)

    @property
    def policy(self) -> Policy:
        return self.policy_config.to_policy()

    def secrets(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """The secret values in force, for the log redaction filter: Slack's, the webhook's, and
        the Databricks credentials the workspaces name (`token_env`, `client_secret_env`)."""
        environ = os.environ if environ is None else environ
        found = [
            secret.get_secret_value()
            for secret in (
                self.slack_bot_token,
                self.slack_signing_secret,
                self.slack_app_token,
                self.webhook_secret,
            )
            if secret is not None
        ]
        for workspace in self.workspaces:
            found += [environ.get(name or "") for name in (workspace.token_env, workspace.client_secret_env)]
        found += [environ.get("DATABRICKS_TOKEN"), environ.get("DATABRICKS_CLIENT_SECRET")]
        return [value for value in found if value]


# --------------------------------------------------------------------------------------------
# Loading


_FILE_SECTIONS = {
    "workspaces": "workspaces",
    "policy": "policy_config",
    "slack": "slack",
    "databricks": "databricks",
    "secret_bindings": "secret_bindings",
}
_SECRET_ENV_NAMES = {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "TOKENBOT_WEBHOOK_SECRET"}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the environment and the TOML file; raise `ConfigError` listing every problem."""
    environ = os.environ if environ is None else environ
    path, explicit = _config_path(environ)
    file_values, problems = _read_toml(path, explicit)
    if not file_values.get("workspaces") and environ.get("DATABRICKS_HOST"):
        # A single workspace from DATABRICKS_* alone: the SDK's unified auth does the rest.
        file_values["workspaces"] = [{"name": "default", "host": environ["DATABRICKS_HOST"]}]
    if problems:
        raise ConfigError(problems)
    try:
        return _build(environ, file_values)
    except ValidationError as error:
        raise ConfigError(_describe(error, str(path or "configuration"))) from None


def _config_path(environ: Mapping[str, str]) -> tuple[Path | None, bool]:
    if environ.get("TOKENBOT_CONFIG"):
        return Path(environ["TOKENBOT_CONFIG"]), True
    default = Path(DEFAULT_CONFIG_FILE)
    return (default if default.is_file() else None), False


def _read_toml(path: Path | None, explicit: bool) -> tuple[dict[str, Any], list[str]]:
    if path is None:
        return {}, []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        where = "TOKENBOT_CONFIG" if explicit else str(path)
        return {}, [f"{where}: file not found: {path} (create it, or unset TOKENBOT_CONFIG)"]
    except (OSError, UnicodeDecodeError) as error:
        return {}, [f"{path}: cannot be read: {error}"]
    except tomllib.TOMLDecodeError as error:
        return {}, [f"{path}: not valid TOML: {error}"]
    unknown = sorted(set(raw) - set(_FILE_SECTIONS))
    problems = [f"{path}: {key}: unknown section; allowed: {', '.join(_FILE_SECTIONS)}" for key in unknown]
    return {_FILE_SECTIONS[key]: value for key, value in raw.items() if key in _FILE_SECTIONS}, problems


def _build(environ: Mapping[str, str], file_values: dict[str, Any]) -> Settings:
    env_values = {
        info.validation_alias: environ[info.validation_alias]
        for info in Settings.model_fields.values()
        if isinstance(info.validation_alias, str) and environ.get(info.validation_alias) not in (None, "")
    }
    return Settings(**env_values, **file_values)


def _describe(error: ValidationError, source: str) -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        location = [part for part in item["loc"] if part not in ("function-after", "function-before")]
        where = _location(location)
        if where in _SECRET_ENV_NAMES or where.isupper():
            origin = "environment"
        else:
            origin = source
            where = _file_key(where)
        lines.append(f"{origin}: {where}: {_explain(item, where)}")
    return lines


def _location(parts: list[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def _file_key(where: str) -> str:
    for section, field in _FILE_SECTIONS.items():
        if where == field or where.startswith(field + ".") or where.startswith(field + "["):
            return section + where[len(field) :]
    return where


def _explain(item: dict[str, Any], where: str) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        return "unknown key; check the spelling against the README's configuration reference"
    if kind == "missing":
        return "is required"
    message = item["msg"].removeprefix("Value error, ")
    if where in _SECRET_ENV_NAMES:
        return message  # never echo a secret
    value = item.get("input")
    if isinstance(value, dict | list) and len(repr(value)) > 120:
        return message
    return f"{message} (got {value!r})"
