"""`[policy.misuse]`: thresholds and allowed networks for the misuse signals, validated with
messages that say what to write."""

from __future__ import annotations

import pytest

from bot.config import MisuseConfig, load_settings
from bot.domain.misuse import MisusePolicy
from tests.test_config import problems_for, write_config


def test_misuse_config_mirrors_the_domain_rules_and_defaults():
    assert set(MisuseConfig.model_fields) == set(MisusePolicy.__dataclass_fields__)
    assert load_settings({}).policy.misuse == MisusePolicy()


def test_thresholds_and_allowed_networks_are_read(tmp_path):
    environ = write_config(
        tmp_path,
        "[policy.misuse]\nmax_failed_logins_per_day = 5\nnew_client = false\n"
        'allowed_networks = ["10.0.0.0/8", "2001:db8::/32"]\n',
    )

    misuse = load_settings(environ).policy.misuse

    assert misuse.max_failed_logins_per_day == 5 and not misuse.new_client
    assert misuse.allowed_networks == ("10.0.0.0/8", "2001:db8::/32")


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            'allowed_networks = ["office"]',
            "policy.misuse.allowed_networks: 'office' is not a network; write CIDR",
        ),
        ("recent_days = 0", "policy.misuse.recent_days: Input should be greater than or equal to 1"),
        (
            "max_clients_per_day = -1",
            "policy.misuse.max_clients_per_day: Input should be greater than or equal to 0",
        ),
        ("new_netwrok = true", "policy.misuse.new_netwrok: unknown key"),
        (
            'max_failed_logins_per_day = "20"',
            "policy.misuse.max_failed_logins_per_day: Input should be a valid integer",
        ),
    ],
)
def test_bad_misuse_settings_are_named(tmp_path, toml, expected):
    [problem] = problems_for(write_config(tmp_path, f"[policy.misuse]\n{toml}\n"))
    assert expected in problem
