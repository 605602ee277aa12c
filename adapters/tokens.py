"""Bearer tokens (JWT): minted here with HS256, or issued by an external OIDC provider.

The port is application.ports.TokenVerifier. Every way a token can be wrong ends in
NotAuthenticated with a message a client developer can act on; nothing else escapes verify(),
because anything else would turn a bad token into a 500.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import jwt

from application.errors import NotAuthenticated

log = logging.getLogger(__name__)

# A provider key is only ever used with the one algorithm it is for, and HMAC only ever with our
# own secret: that is what closes the RS256 -> HS256 "public key as HMAC secret" confusion.
_PROVIDER_ALGORITHMS = {"RSA": "RS256", "EC": "ES256"}
_ALLOWED_ALGORITHMS = {"HS256", *_PROVIDER_ALGORITHMS.values()}


class JwtTokens:
    def __init__(
        self,
        *,
        secret: str,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        jwks_cache_seconds: float = 300.0,
        jwks_min_refetch_seconds: float = 30.0,
        leeway_seconds: int = 30,
        http_timeout_seconds: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not secret:
            raise ValueError("the JWT signing secret must not be empty")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._jwks_url = jwks_url
        self._cache_seconds = jwks_cache_seconds
        self._min_refetch_seconds = jwks_min_refetch_seconds
        self._leeway = leeway_seconds
        self._http_timeout = http_timeout_seconds
        self._monotonic = monotonic
        # The provider's keys by kid. The dict is replaced whole, never mutated, so readers
        # can take it without the lock; the lock only serialises fetching.
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._fetch_lock = threading.Lock()

    def mint(
        self,
        *,
        subject: str,
        roles: list[str],
        tenant_id: UUID | None,
        ttl_seconds: int,
        now: datetime,
    ) -> str:
        claims: dict[str, Any] = {
            "sub": subject,
            "roles": list(roles),
            "iat": now,
            "exp": now + timedelta(seconds=ttl_seconds),
            "iss": self._issuer,
            "aud": self._audience,
            "jti": secrets.token_urlsafe(16),
        }
        if tenant_id is not None:  # platform roles act across tenants and carry no tid
            claims["tid"] = str(tenant_id)
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> dict[str, Any]:
        try:
            claims = self._decode(token)
        except jwt.PyJWTError as error:
            raise NotAuthenticated(_explain(error, self._issuer, self._audience)) from None
        except (ValueError, TypeError):  # defensive: malformed input that PyJWT did not wrap
            raise NotAuthenticated("the token is malformed") from None
        _check_workledger_claims(claims)
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in _ALLOWED_ALGORITHMS:  # includes "none"
            raise NotAuthenticated(f"the token's algorithm {alg!r} is not accepted")
        if kid is not None and not isinstance(kid, str):
            raise NotAuthenticated("the token's kid header is not a string")
        key: str | jwt.PyJWK
        if alg == "HS256":
            # A kid naming a provider key on an HMAC token is an algorithm-confusion attempt.
            if kid is not None and self._provider_key(kid) is not None:
                raise NotAuthenticated("the token names a provider key but is signed with HS256")
            key = self._secret
        elif self._jwks_url is None:
            raise NotAuthenticated(f"tokens signed with {alg} are not accepted here")
        else:
            provider_key = self._provider_key(kid) if kid is not None else None
            if provider_key is None:
                raise NotAuthenticated("unknown signing key")
            key = provider_key  # PyJWT refuses a token whose alg is not the key's own algorithm
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )

    def _provider_key(self, kid: str) -> jwt.PyJWK | None:
        url = self._jwks_url
        if url is None:
            return None
        keys = self._keys
        if kid in keys and not self._stale():
            return keys[kid]
        with self._fetch_lock:
            # Another thread may have fetched while this one waited; and an unknown kid must
            # not trigger a fetch per token (anyone can invent kids), so fetch at most once
            # per min-refetch interval whatever the outcome.
            now = self._monotonic()
            recently = (
                self._attempted_at is not None
                and now - self._attempted_at < self._min_refetch_seconds
            )
            if (kid not in self._keys or self._stale()) and not recently:
                self._attempted_at = now
                self._refresh(url, now)
            # After a failed fetch the keys we had keep working: an outage at the provider
            # should not log everybody out.
            return self._keys.get(kid)

    def _stale(self) -> bool:
        return (
            self._fetched_at is None or self._monotonic() - self._fetched_at >= self._cache_seconds
        )

    def _refresh(self, url: str, now: float) -> None:
        try:
            response = httpx.get(url, timeout=self._http_timeout)
            response.raise_for_status()
            key_set = jwt.PyJWKSet.from_dict(response.json())
        except Exception as error:  # the provider is outside our control: anything can happen
            log.warning("could not fetch the JWKS from %s: %r", url, error)
            return
        keys = {
            key.key_id: key
            for key in key_set.keys
            if key.key_id
            and key.public_key_use in (None, "sig")
            # Only asymmetric keys, and only with the algorithm their type is for: a symmetric
            # ("oct") key published in the JWKS must never become an HMAC secret.
            and _PROVIDER_ALGORITHMS.get(key.key_type or "") == key.algorithm_name
        }
        self._keys, self._fetched_at = keys, now


def _check_workledger_claims(claims: dict[str, Any]) -> None:
    """The claims the authorization layer relies on, beyond what PyJWT checks."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise NotAuthenticated("the token's sub claim must be a non-empty string")
    roles = claims.get("roles")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise NotAuthenticated("the token's roles claim must be a list of strings")
    if "tid" in claims:
        tid = claims["tid"]
        try:
            UUID(tid)
        except (TypeError, ValueError, AttributeError):
            raise NotAuthenticated("the token's tid claim is not a tenant id (UUID)") from None


def _explain(error: jwt.PyJWTError, issuer: str, audience: str) -> str:
    # Most specific first: several of these are subclasses of DecodeError / InvalidTokenError.
    if isinstance(error, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(error, jwt.ImmatureSignatureError):
        return "the token is not valid yet"
    if isinstance(error, jwt.InvalidAudienceError):
        return f"the token's audience is not {audience}"
    if isinstance(error, jwt.InvalidIssuerError):
        return f"the token's issuer is not {issuer}"
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the token has no {error.claim} claim"
    if isinstance(error, jwt.InvalidSignatureError):
        return "the token's signature does not check out"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return "the token's algorithm does not match its signing key"
    if isinstance(error, jwt.DecodeError):
        return "the token is malformed"
    return f"the token is invalid: {error}"
