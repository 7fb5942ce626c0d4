"""Settings come from the environment as the template sets it: one variable per field, JSON for structures."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from footprint.settings import Settings

TABLES = {
    "EVENTS_TABLE": "e",
    "PROFILES_TABLE": "p",
    "CONFIG_TABLE": "c",
    "MESSAGES_TABLE": "m",
    "IDEMPOTENCY_TABLE": "i",
    "STEPS_TABLE": "s",
}


def test_each_field_is_read_from_its_variable_in_any_case_and_parsed() -> None:
    settings = Settings.from_environment(
        {
            **TABLES,
            "config_cache_seconds": "5",
            "ALLOW_LOOPBACK_DESTINATIONS": "true",
            "MESSAGING_POLICY": '{"frequency_caps": {"web_push": {"per_day": 1}}, "timezone": "Asia/Ho_Chi_Minh"}',
            "PATH": "/usr/bin",  # not a setting: ignored
        }
    )

    assert settings.events_table == "e"
    assert settings.config_cache_seconds == 5
    assert settings.allow_loopback_destinations is True
    assert settings.messaging_policy.frequency_caps["web_push"].per_day == 1
    assert settings.stage == "local"  # the default when the variable is not set


def test_a_missing_required_setting_or_a_bad_value_is_refused_naming_it() -> None:
    without_steps = {name: value for name, value in TABLES.items() if name != "STEPS_TABLE"}
    with pytest.raises(ValidationError, match="steps_table"):
        Settings.from_environment(without_steps)
    with pytest.raises(ValidationError, match="config_cache_seconds"):
        Settings.from_environment({**TABLES, "CONFIG_CACHE_SECONDS": "soon"})
    with pytest.raises(ValueError, match="MESSAGING_POLICY is not JSON"):
        Settings.from_environment({**TABLES, "MESSAGING_POLICY": "{per_day: 1}"})


def test_the_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in TABLES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SENDER_EMAIL", "shop@example.com")

    assert Settings.from_environment().sender_email == "shop@example.com"
