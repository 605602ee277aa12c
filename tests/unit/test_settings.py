"""Settings: every WORKLEDGER_* value is checked at start-up, and a bad one is refused with one
line that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.settings import DEFAULT_RETRY_SCHEDULE, SettingsError, load_settings


def settings(tmp_path: Path, **env: str):  # type: ignore[no-untyped-def]
    base = {"WORKLEDGER_VAR_DIR": str(tmp_path / "var")}
    return load_settings({**base, **env}, read_dotenv=False)


def test_defaults_need_nothing_and_create_secrets_once(tmp_path: Path) -> None:
    first = settings(tmp_path)
    again = settings(tmp_path)
    assert first.database_url == f"sqlite:///{tmp_path}/var/workledger.db"
    assert first.webhook_retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert first.webhook_allow_private_targets is False
    assert first.redis_url is None
    assert first.tenant_rate_limits is None
    assert len(first.jwt_secret) >= 32
    assert len(first.api_key_secret) >= 32
    assert first.jwt_secret != first.api_key_secret
    assert (again.jwt_secret, again.api_key_secret) == (first.jwt_secret, first.api_key_secret)


def test_values_that_are_accepted(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        WORKLEDGER_WEBHOOK_RETRY_SCHEDULE="0.05, 1,2",
        WORKLEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
        WORKLEDGER_REDIS_URL="redis://127.0.0.1:6379/0",
        WORKLEDGER_TENANT_RATE_LIMITS="starter=10, professional=20,enterprise=30",
        WORKLEDGER_API_KEY_SECRET="k" * 40,
    )
    assert s.webhook_retry_schedule == (0.05, 1.0, 2.0)
    assert s.webhook_allow_private_targets is True
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.tenant_rate_limits == {"starter": 10, "professional": 20, "enterprise": 30}
    assert s.api_key_secret == "k" * 40


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKLEDGER_WEBHOOK_RETRY_SCHEDULE", "1,two,3"),
        ("WORKLEDGER_WEBHOOK_RETRY_SCHEDULE", "-1"),
        ("WORKLEDGER_WEBHOOK_RETRY_SCHEDULE", "nan"),
        ("WORKLEDGER_WEBHOOK_RETRY_SCHEDULE", "inf"),
        ("WORKLEDGER_WEBHOOK_RETRY_SCHEDULE", "1,,2"),
        ("WORKLEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "maybe"),
        ("WORKLEDGER_REDIS_URL", "http://127.0.0.1:6379"),
        ("WORKLEDGER_TENANT_RATE_LIMITS", "starter=10"),
        ("WORKLEDGER_TENANT_RATE_LIMITS", "starter=10,professional=20,enterprise=0"),
        ("WORKLEDGER_TENANT_RATE_LIMITS", "starter=10,professional=20,enterprise=lots"),
        ("WORKLEDGER_TENANT_RATE_LIMITS", "gold=1,starter=10,professional=20,enterprise=30"),
        ("WORKLEDGER_DATABASE_URL", "mysql://db/x"),
        ("WORKLEDGER_JWKS_URL", "ftp://idp/jwks"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        settings(tmp_path, **{name: value})
    message = str(refused.value)
    assert message.startswith(name + ": ")
    assert "\n" not in message
