"""Settings from the environment (and a .env file), checked once at start-up.

A bad setting stops start-up with one line that names it (SettingsError). Names are in API.md.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from domain.tenant import PLANS

DEFAULT_RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)  # Standard Webhooks


class SettingsError(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


@dataclass(frozen=True)
class Settings:
    database_url: str
    jwt_secret: str
    jwt_issuer: str = "workledger"
    jwt_audience: str = "workledger"
    jwks_url: str | None = None
    redis_url: str | None = None
    webhook_allow_private_targets: bool = False
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    # Requests per minute per tenant, by plan; None keeps the service's defaults.
    tenant_rate_limits: dict[str, int] | None = None
    # The HMAC key under which API keys are stored (only their HMAC is kept). Every process
    # of a deployment needs the same one.
    # Settings built in code (tests) get a fresh random one; load_settings reads or creates it.
    api_key_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    var_dir: Path = field(default_factory=lambda: Path("var"))

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def sqlite_path(self) -> str:
        return sqlite_path(self.database_url)


def sqlite_path(url: str) -> str:
    """`sqlite:///relative/file.db`, `sqlite:////abs/file.db` or `sqlite:///:memory:`."""
    return url.removeprefix("sqlite:///")


def load_settings(
    environ: Mapping[str, str] | None = None, *, read_dotenv: bool = True
) -> Settings:
    if environ is None:
        if read_dotenv:
            from dotenv import load_dotenv

            load_dotenv(Path.cwd() / ".env", override=False)
        environ = os.environ
    env = {k: v for k, v in environ.items() if k.startswith("WORKLEDGER_")}
    var_dir = Path(env.get("WORKLEDGER_VAR_DIR", "var"))
    database_url = env.get("WORKLEDGER_DATABASE_URL") or f"sqlite:///{var_dir}/workledger.db"
    _check_database_url(database_url)
    jwks_url = env.get("WORKLEDGER_JWKS_URL") or None
    if jwks_url and urlparse(jwks_url).scheme not in ("http", "https"):
        raise SettingsError("WORKLEDGER_JWKS_URL", "must be an http(s) URL")
    return Settings(
        database_url=database_url,
        jwt_secret=env.get("WORKLEDGER_JWT_SECRET") or _stored_secret(var_dir, "jwt-secret"),
        api_key_secret=(
            env.get("WORKLEDGER_API_KEY_SECRET") or _stored_secret(var_dir, "api-key-secret")
        ),
        jwt_issuer=env.get("WORKLEDGER_JWT_ISSUER") or "workledger",
        jwt_audience=env.get("WORKLEDGER_JWT_AUDIENCE") or "workledger",
        jwks_url=jwks_url,
        redis_url=_redis_url(env.get("WORKLEDGER_REDIS_URL")),
        webhook_allow_private_targets=_bool(env, "WORKLEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS"),
        webhook_retry_schedule=_schedule(env.get("WORKLEDGER_WEBHOOK_RETRY_SCHEDULE")),
        tenant_rate_limits=_plan_limits(env.get("WORKLEDGER_TENANT_RATE_LIMITS")),
        var_dir=var_dir,
    )


def _check_database_url(url: str) -> None:
    name = "WORKLEDGER_DATABASE_URL"
    if url.startswith("sqlite:///"):
        if not sqlite_path(url):
            raise SettingsError(name, "a sqlite URL needs a file: sqlite:///var/workledger.db")
        return
    parsed = urlparse(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise SettingsError(name, "must start with sqlite:/// or postgresql://")
    if not parsed.hostname or not parsed.path.strip("/"):
        raise SettingsError(name, "a postgresql URL needs a host and a database name")
    try:
        _ = parsed.port
    except ValueError:
        raise SettingsError(name, "the port is not a number") from None


def postgres_parts(url: str) -> dict[str, str]:
    """Connection parts of a postgresql:// URL, and `schema` from ?schema=."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": str(parsed.port or 5432),
        "user": unquote(parsed.username or ""),
        "password": unquote(parsed.password or ""),
        "dbname": parsed.path.strip("/"),
        "schema": query.get("schema", [""])[0],
    }


def _stored_secret(var_dir: Path, name: str) -> str:
    """A secret created once under var/, so tokens and API keys survive restarts."""
    path = var_dir / name
    if path.exists():
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
    var_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return secret


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(name, f"must be true or false, not {value!r}")


def _redis_url(value: str | None) -> str | None:
    if not value:
        return None
    if urlparse(value).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError("WORKLEDGER_REDIS_URL", "must be a redis:// or rediss:// URL")
    return value


def _schedule(value: str | None) -> tuple[float, ...]:
    """Seconds between attempts; fractions are allowed (tests and local use want them)."""
    if not value:
        return DEFAULT_RETRY_SCHEDULE
    name = "WORKLEDGER_WEBHOOK_RETRY_SCHEDULE"
    try:
        schedule = tuple(float(part) for part in value.split(","))
    except ValueError:
        raise SettingsError(name, "must be comma-separated seconds, e.g. 1,2,4") from None
    if not schedule or any(not (0 <= s <= 7 * 86400) for s in schedule):
        raise SettingsError(name, "each delay must be between 0 and 604800 seconds")
    return schedule


def _plan_limits(value: str | None) -> dict[str, int] | None:
    """`starter=600,professional=3000,enterprise=12000`: every plan, each a positive number."""
    if not value:
        return None
    name = "WORKLEDGER_TENANT_RATE_LIMITS"
    limits: dict[str, int] = {}
    for part in value.split(","):
        plan, sep, number = part.partition("=")
        plan = plan.strip()
        if not sep or plan not in PLANS:
            raise SettingsError(name, f"expected plan=requests-per-minute for {', '.join(PLANS)}")
        try:
            limits[plan] = int(number)
        except ValueError:
            raise SettingsError(name, f"{plan}: {number.strip()!r} is not a whole number") from None
        if limits[plan] < 1:
            raise SettingsError(name, f"{plan}: must be at least 1")
    missing = [plan for plan in PLANS if plan not in limits]
    if missing:
        raise SettingsError(name, f"no limit for {', '.join(missing)}")
    return limits
