"""JwtTokens against real tokens: our own HS256 ones and a fake OIDC provider's over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.tokens import JwtTokens
from application.errors import NotAuthenticated
from tests.fakes.oidc import FakeOidcProvider

SECRET = "test-secret-that-is-at-least-32-bytes-long"
ISSUER = "https://workledger.test"
AUDIENCE = "workledger"
CACHE_SECONDS = 300.0
MIN_REFETCH_SECONDS = 30.0
TENANT = uuid.UUID("6f1c7a52-1d8e-4a53-9a43-3c1f0e7b2d11")


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def idp() -> Iterator[FakeOidcProvider]:
    with FakeOidcProvider() as provider:
        yield provider


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def tokens() -> JwtTokens:
    """Our own tokens only: no identity provider configured."""
    return JwtTokens(secret=SECRET, issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def oidc_tokens(idp: FakeOidcProvider, clock: FakeMonotonic) -> JwtTokens:
    """Our own tokens and the fake provider's (its issuer is the one configured)."""
    return JwtTokens(
        secret=SECRET,
        issuer=idp.issuer,
        audience=AUDIENCE,
        jwks_url=idp.jwks_url,
        jwks_cache_seconds=CACHE_SECONDS,
        jwks_min_refetch_seconds=MIN_REFETCH_SECONDS,
        monotonic=clock,
    )


def now() -> datetime:
    return datetime.now(UTC)


def valid_claims(**overrides: Any) -> dict[str, Any]:
    claims = {
        "sub": "ann",
        "roles": ["member"],
        "tid": str(TENANT),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + timedelta(minutes=5),
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not ...}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(header: dict[str, Any], claims: dict[str, Any], hmac_key: bytes | None) -> str:
    """A JWT built without PyJWT, which refuses to build the attacks we want to test."""
    claims = {k: int(v.timestamp()) if isinstance(v, datetime) else v for k, v in claims.items()}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = b""
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def rejection(verifier: JwtTokens, token: str) -> str:
    with pytest.raises(NotAuthenticated) as caught:
        verifier.verify(token)
    return caught.value.message


# -- tokens this service mints (HS256) -----------------------------------------------------------


def test_minted_token_round_trips(tokens: JwtTokens) -> None:
    issued_at = now().replace(microsecond=0)
    token = tokens.mint(
        subject="ann", roles=["member", "finance"], tenant_id=TENANT, ttl_seconds=600, now=issued_at
    )

    claims = tokens.verify(token)

    assert claims["sub"] == "ann"
    assert claims["roles"] == ["member", "finance"]
    assert claims["tid"] == str(TENANT)
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    assert claims["iat"] == int(issued_at.timestamp())
    assert claims["exp"] == int(issued_at.timestamp()) + 600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_minted_tokens_have_distinct_ids_and_platform_tokens_no_tenant(tokens: JwtTokens) -> None:
    def mint() -> str:
        return tokens.mint(
            subject="root", roles=["platform-admin"], tenant_id=None, ttl_seconds=60, now=now()
        )

    first, second = tokens.verify(mint()), tokens.verify(mint())

    assert "tid" not in first
    assert first["jti"]
    assert second["jti"]
    assert first["jti"] != second["jti"]


def test_empty_roles_are_accepted(tokens: JwtTokens) -> None:
    token = jwt.encode(valid_claims(roles=[]), SECRET, algorithm="HS256")

    assert tokens.verify(token)["roles"] == []


def test_expiry_allows_the_configured_leeway(tokens: JwtTokens) -> None:
    def expired_ago(seconds: int) -> str:
        issued = now() - timedelta(seconds=60 + seconds)
        return tokens.mint(subject="ann", roles=[], tenant_id=None, ttl_seconds=60, now=issued)

    assert tokens.verify(expired_ago(10))["sub"] == "ann"
    assert rejection(tokens, expired_ago(60)) == "the token has expired"


def _other_issuer() -> str:
    other = JwtTokens(secret=SECRET, issuer="https://evil.test", audience=AUDIENCE)
    return other.mint(subject="ann", roles=[], tenant_id=None, ttl_seconds=60, now=now())


def _other_audience() -> str:
    other = JwtTokens(secret=SECRET, issuer=ISSUER, audience="billing")
    return other.mint(subject="ann", roles=[], tenant_id=None, ttl_seconds=60, now=now())


def _other_secret() -> str:
    other = JwtTokens(
        secret="another-secret-of-at-least-32-bytes!!", issuer=ISSUER, audience=AUDIENCE
    )
    return other.mint(subject="ann", roles=[], tenant_id=None, ttl_seconds=60, now=now())


def _expired() -> str:
    past = now() - timedelta(hours=2)
    return jwt.encode(valid_claims(iat=past, exp=past + timedelta(hours=1)), SECRET, "HS256")


def _signed(**overrides: Any) -> Callable[[], str]:
    return lambda: jwt.encode(valid_claims(**overrides), SECRET, algorithm="HS256")


def _signed_non_json() -> str:
    header = b64url(json.dumps({"alg": "HS256"}).encode())
    signing_input = f"{header}.{b64url(b'not json')}"
    signature = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def _tampered() -> str:
    header, _payload, signature = _signed()().split(".")
    forged = b64url(
        json.dumps({**valid_claims(roles=["customer-admin"]), "iat": 0, "exp": 2**40}).encode()
    )
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("make_token", "message"),
    [
        pytest.param(_expired, "the token has expired", id="expired"),
        pytest.param(_other_issuer, f"the token's issuer is not {ISSUER}", id="wrong-issuer"),
        pytest.param(_other_audience, "the token's audience is not workledger", id="wrong-aud"),
        pytest.param(_other_secret, "the token's signature does not check out", id="bad-secret"),
        pytest.param(_tampered, "the token's signature does not check out", id="tampered"),
        pytest.param(lambda: "", "the token is malformed", id="empty"),
        pytest.param(lambda: "not-a-jwt", "the token is malformed", id="garbage"),
        pytest.param(lambda: "a.b.c", "the token is malformed", id="bad-base64"),
        pytest.param(_signed_non_json, "the token is malformed", id="signed-non-json"),
        pytest.param(
            lambda: hand_made_token({"alg": "none", "typ": "JWT"}, valid_claims(), None),
            "the token's algorithm 'none' is not accepted",
            id="alg-none",
        ),
        pytest.param(
            lambda: jwt.encode(valid_claims(), SECRET * 2, algorithm="HS512"),
            "the token's algorithm 'HS512' is not accepted",
            id="alg-hs512",
        ),
        pytest.param(_signed(sub=...), "the token has no sub claim", id="missing-sub"),
        pytest.param(
            _signed(sub=""), "the token's sub claim must be a non-empty string", id="empty-sub"
        ),
        pytest.param(_signed(exp=...), "the token has no exp claim", id="missing-exp"),
        pytest.param(_signed(aud=...), "the token has no aud claim", id="missing-aud"),
        pytest.param(
            _signed(roles="member"),
            "the token's roles claim must be a list of strings",
            id="roles-string",
        ),
        pytest.param(
            _signed(roles=...), "the token's roles claim must be a list of strings", id="no-roles"
        ),
        pytest.param(
            _signed(roles=["member", 7]),
            "the token's roles claim must be a list of strings",
            id="roles-non-string",
        ),
        pytest.param(
            _signed(tid="tenant-1"),
            "the token's tid claim is not a tenant id (UUID)",
            id="tid-not-uuid",
        ),
        pytest.param(
            _signed(tid=12345), "the token's tid claim is not a tenant id (UUID)", id="tid-number"
        ),
    ],
)
def test_invalid_tokens_are_not_authenticated(
    tokens: JwtTokens, make_token: Callable[[], str], message: str
) -> None:
    assert rejection(tokens, make_token()) == message


def test_provider_tokens_are_refused_without_a_jwks_url(
    tokens: JwtTokens, idp: FakeOidcProvider
) -> None:
    token = idp.mint(valid_claims(iss=ISSUER), alg="RS256")

    assert rejection(tokens, token) == "tokens signed with RS256 are not accepted here"
    assert idp.jwks_requests == 0


JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10))


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.builds(
            lambda header, payload, signature: ".".join(
                [
                    b64url(json.dumps(header).encode()),
                    b64url(json.dumps(payload).encode()),
                    signature,
                ]
            ),
            st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit", "b64"]), JSON_SCALARS),
            st.dictionaries(st.text(max_size=5), st.one_of(st.none(), st.integers(), st.text())),
            st.text(alphabet="abcXYZ09-_", max_size=20),
        ),
    )
)
def test_nothing_but_not_authenticated_escapes(token: str) -> None:
    verifier = JwtTokens(secret=SECRET, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(NotAuthenticated):
        verifier.verify(token)


# -- tokens of an external OIDC provider (RS256 / ES256 through JWKS) ----------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_provider_tokens_verify(oidc_tokens: JwtTokens, idp: FakeOidcProvider, alg: str) -> None:
    token = idp.mint(valid_claims(iss=idp.issuer, sub="bob", roles=["auditor"]), alg=alg)  # type: ignore[arg-type]

    claims = oidc_tokens.verify(token)
    again = oidc_tokens.verify(token)

    assert (claims["sub"], claims["roles"], claims["tid"]) == ("bob", ["auditor"], str(TENANT))
    assert again == claims
    assert jwt.get_unverified_header(token)["alg"] == alg
    assert idp.jwks_requests == 1, "the key set is cached, not fetched per token"


def test_our_own_tokens_still_verify_with_a_provider_configured(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider
) -> None:
    token = oidc_tokens.mint(subject="ann", roles=[], tenant_id=TENANT, ttl_seconds=60, now=now())

    assert oidc_tokens.verify(token)["tid"] == str(TENANT)
    assert idp.jwks_requests == 0, "a token without kid needs no key set"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aud": "billing"}, "the token's audience is not workledger"),
        ({"iss": "https://evil.test"}, "the token's issuer is not"),
        (
            {"exp": datetime(2020, 1, 1, tzinfo=UTC), "iat": datetime(2019, 1, 1, tzinfo=UTC)},
            "the token has expired",
        ),
        ({"tid": "not-a-uuid"}, "the token's tid claim is not a tenant id (UUID)"),
    ],
)
def test_provider_tokens_get_the_same_claim_checks(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider, overrides: dict[str, Any], message: str
) -> None:
    token = idp.mint(valid_claims(**{"iss": idp.issuer, **overrides}), alg="ES256")

    assert rejection(oidc_tokens, token).startswith(message)


def test_a_provider_token_signed_by_another_key_than_its_kid_says_is_rejected(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider
) -> None:
    rsa_kid = idp.current_key("RS256").kid
    ec_key = idp.current_key("ES256").private_key
    claims = valid_claims(iss=idp.issuer)
    wrong_alg = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": rsa_kid})
    other_rsa = idp.rotate("RS256").private_key  # unpublished below: only its signature is used
    idp.keys.pop()
    wrong_key = jwt.encode(claims, other_rsa, algorithm="RS256", headers={"kid": rsa_kid})

    assert (
        rejection(oidc_tokens, wrong_alg) == "the token's algorithm does not match its signing key"
    )
    assert rejection(oidc_tokens, wrong_key) == "the token's signature does not check out"


def test_a_published_encryption_key_is_not_a_signing_key(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider
) -> None:
    enc_key = idp.rotate("RS256", use="enc")
    token = idp.mint(valid_claims(iss=idp.issuer), kid=enc_key.kid)

    assert jwt.get_unverified_header(token)["kid"] == enc_key.kid
    assert rejection(oidc_tokens, token) == "unknown signing key"
    assert idp.jwks_requests == 1


def test_a_provider_token_without_kid_is_rejected(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider
) -> None:
    token = jwt.encode(
        valid_claims(iss=idp.issuer), idp.current_key("RS256").private_key, algorithm="RS256"
    )

    assert rejection(oidc_tokens, token) == "unknown signing key"


def test_a_rotated_key_verifies_after_one_refetch(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider, clock: FakeMonotonic
) -> None:
    old_token = idp.mint(valid_claims(iss=idp.issuer))
    oidc_tokens.verify(old_token)
    assert idp.jwks_requests == 1
    clock.advance(MIN_REFETCH_SECONDS + 1)

    new_key = idp.rotate("RS256")
    new_token = idp.mint(valid_claims(iss=idp.issuer, sub="new"))

    assert jwt.get_unverified_header(new_token)["kid"] == new_key.kid
    assert oidc_tokens.verify(new_token)["sub"] == "new"
    assert oidc_tokens.verify(new_token)["sub"] == "new"
    assert oidc_tokens.verify(old_token)["sub"] == "ann", "the old key is still published"
    assert idp.jwks_requests == 2


def test_a_dropped_key_stops_verifying_once_the_cache_expires(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider, clock: FakeMonotonic
) -> None:
    old_token = idp.mint(valid_claims(iss=idp.issuer))
    oidc_tokens.verify(old_token)

    idp.rotate("RS256", drop_old=True)
    clock.advance(CACHE_SECONDS - 1)
    assert oidc_tokens.verify(old_token)["sub"] == "ann", "still inside the cache lifetime"
    clock.advance(2)

    assert rejection(oidc_tokens, old_token) == "unknown signing key"
    assert idp.jwks_requests == 2


def test_unknown_kids_from_many_threads_fetch_once_per_interval(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider, clock: FakeMonotonic
) -> None:
    idp.delay_seconds = 0.05  # a slow provider: many threads arrive while a fetch is running

    def storm() -> list[BaseException | None]:
        forged = [idp.mint(valid_claims(iss=idp.issuer), kid=uuid.uuid4().hex) for _ in range(200)]

        def attempt(token: str) -> BaseException | None:
            try:
                oidc_tokens.verify(token)
            except Exception as error:
                return error
            return None

        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(attempt, forged))

    first = storm()
    assert idp.jwks_requests == 1
    clock.advance(MIN_REFETCH_SECONDS - 1)
    storm()
    assert idp.jwks_requests == 1, "still inside the min-refetch interval"
    clock.advance(2)
    second = storm()

    assert idp.jwks_requests == 2
    for outcome in first + second:
        assert isinstance(outcome, NotAuthenticated)
        assert outcome.message == "unknown signing key"


def test_threads_arriving_during_a_refetch_wait_for_it_and_get_the_new_key(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider, clock: FakeMonotonic
) -> None:
    oidc_tokens.verify(idp.mint(valid_claims(iss=idp.issuer)))
    clock.advance(MIN_REFETCH_SECONDS + 1)
    idp.rotate("ES256")
    new_tokens = [
        idp.mint(valid_claims(iss=idp.issuer, sub=f"u{i}"), alg="ES256") for i in range(32)
    ]
    idp.delay_seconds = 0.3  # every thread starts while the first one's fetch is in flight

    with ThreadPoolExecutor(max_workers=32) as pool:
        subjects = list(pool.map(lambda token: oidc_tokens.verify(token)["sub"], new_tokens))

    assert subjects == [f"u{i}" for i in range(32)]
    assert idp.jwks_requests == 2


@pytest.mark.parametrize(
    "break_provider",
    [
        pytest.param(lambda idp: idp.fail_with(503), id="http-503"),
        pytest.param(lambda idp: idp.fail_with(404), id="http-404"),
        pytest.param(lambda idp: idp.serve_garbage(), id="html"),
        pytest.param(lambda idp: idp.serve_garbage(b"[1, 2]"), id="json-list"),
        pytest.param(lambda idp: idp.serve_garbage(b'{"keys": []}'), id="no-keys"),
        pytest.param(lambda idp: idp.serve_garbage(b'{"keys": [{"kty": "XX"}]}'), id="bad-key"),
        pytest.param(lambda idp: idp.serve_garbage(b'{"keys": "x"}'), id="keys-string"),
        pytest.param(lambda idp: idp.stop(), id="down"),
    ],
)
def test_cached_keys_survive_a_provider_outage(
    oidc_tokens: JwtTokens,
    idp: FakeOidcProvider,
    clock: FakeMonotonic,
    break_provider: Callable[[FakeOidcProvider], None],
) -> None:
    known = idp.mint(valid_claims(iss=idp.issuer))
    unknown = idp.mint(valid_claims(iss=idp.issuer), kid="never-published")
    oidc_tokens.verify(known)
    break_provider(idp)
    clock.advance(CACHE_SECONDS + 1)  # the cached keys are stale: a refetch is attempted and fails

    assert oidc_tokens.verify(known)["sub"] == "ann"
    assert rejection(oidc_tokens, unknown) == "unknown signing key"
    clock.advance(MIN_REFETCH_SECONDS + 1)
    assert rejection(oidc_tokens, unknown) == "unknown signing key"
    assert oidc_tokens.verify(known)["sub"] == "ann"
    if idp._server is not None:  # still answering HTTP: check the refetches really happened
        assert idp.jwks_requests == 3


def test_a_slow_provider_times_out_without_breaking_cached_keys(
    idp: FakeOidcProvider, clock: FakeMonotonic
) -> None:
    verifier = JwtTokens(
        secret=SECRET,
        issuer=idp.issuer,
        audience=AUDIENCE,
        jwks_url=idp.jwks_url,
        http_timeout_seconds=0.2,
        monotonic=clock,
    )
    known = idp.mint(valid_claims(iss=idp.issuer))
    verifier.verify(known)
    idp.delay_seconds = 2.0
    clock.advance(10_000)

    assert verifier.verify(known)["sub"] == "ann"
    assert rejection(verifier, idp.mint(valid_claims(iss=idp.issuer), kid="x")) == (
        "unknown signing key"
    )


# -- algorithm confusion --------------------------------------------------------------------------


def test_hs256_signed_with_the_providers_public_key_is_rejected(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider
) -> None:
    key = idp.current_key("RS256")
    claims = valid_claims(iss=idp.issuer, roles=["platform-admin"])
    with_kid = hand_made_token({"alg": "HS256", "kid": key.kid}, claims, key.public_pem())
    without_kid = hand_made_token({"alg": "HS256"}, claims, key.public_pem())

    assert rejection(oidc_tokens, with_kid) == (
        "the token names a provider key but is signed with HS256"
    )
    assert rejection(oidc_tokens, without_kid) == "the token's signature does not check out"


def test_hs256_naming_a_provider_key_is_rejected_even_with_our_secret(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider
) -> None:
    claims = valid_claims(iss=idp.issuer)
    confused = jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": idp.keys[0].kid})
    plain = jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "our-own-key"})

    assert rejection(oidc_tokens, confused) == (
        "the token names a provider key but is signed with HS256"
    )
    assert oidc_tokens.verify(plain)["sub"] == "ann"


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES384"])
def test_other_asymmetric_algorithms_are_rejected(
    oidc_tokens: JwtTokens, idp: FakeOidcProvider, alg: str
) -> None:
    key = idp.current_key("RS256")
    private = ec.generate_private_key(ec.SECP384R1()) if alg == "ES384" else key.private_key
    token = jwt.encode(
        valid_claims(iss=idp.issuer), private, algorithm=alg, headers={"kid": key.kid}
    )

    assert rejection(oidc_tokens, token) == f"the token's algorithm {alg!r} is not accepted"
