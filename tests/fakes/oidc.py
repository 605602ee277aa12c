"""A fake OIDC identity provider: real HTTP on 127.0.0.1, real RSA and EC P-256 keys.

    with FakeOidcProvider() as idp:
        verifier = JwtTokens(..., issuer=idp.issuer, jwks_url=idp.jwks_url)
        token = idp.mint({"sub": "ann", "roles": [], "aud": "workledger"}, alg="ES256")

It serves /.well-known/jwks.json and /.well-known/openid-configuration, counts JWKS requests,
can rotate keys, and can be made to fail (fail_with), to serve garbage (serve_garbage) or to
answer slowly (delay_seconds), so that caching and outage behaviour can be tested for real.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

Alg = Literal["RS256", "ES256"]


class _QuietServer(ThreadingHTTPServer):
    """Clients that give up (the slow-provider tests time out on purpose) are not errors."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: Alg
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    use: str = "sig"  # "enc" publishes a key that must not be accepted for signatures

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": self.use}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(alg: Alg, kid: str | None = None, use: str = "sig") -> SigningKey:
    kid = kid or f"{alg.lower()}-{uuid.uuid4().hex[:12]}"
    if alg == "RS256":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return SigningKey(kid, alg, private_key, use)
    return SigningKey(kid, alg, ec.generate_private_key(ec.SECP256R1()), use)


class FakeOidcProvider:
    def __init__(self) -> None:
        # One key of each kind from the start; the newest key of an alg signs by default.
        self.keys: list[SigningKey] = [new_key("RS256"), new_key("ES256")]
        self.jwks_requests = 0
        self.delay_seconds = 0.0
        self._failure: tuple[int, bytes] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeOidcProvider:
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True  # a slow response must not hold up stop()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: afterwards the port refuses connections. Safe to call twice."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOidcProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake OIDC provider is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    # -- keys and tokens ---------------------------------------------------------------------

    def key(self, kid: str) -> SigningKey:
        return next(key for key in self.keys if key.kid == kid)

    def current_key(self, alg: Alg = "RS256") -> SigningKey:
        return next(key for key in reversed(self.keys) if key.alg == alg)

    def rotate(self, alg: Alg = "RS256", *, drop_old: bool = False, use: str = "sig") -> SigningKey:
        """Publish a new key (it signs from now on); with drop_old, unpublish older ones of alg."""
        key = new_key(alg, use=use)
        with self._lock:
            kept = [k for k in self.keys if not (drop_old and k.alg == alg)]
            self.keys = [*kept, key]
        return key

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.keys]}

    def mint(
        self,
        claims: dict[str, Any],
        alg: Alg = "RS256",
        kid: str | None = None,
    ) -> str:
        """A token signed by the current key of alg (or by the key kid names, if published).

        An unpublished kid is still signed by the current key of alg: the signature is genuine
        and only the kid is unknown, which is what "unknown kid" tests need. iss, iat and exp
        default to this provider, now and now + 5 minutes.
        """
        published = {key.kid: key for key in self.keys}
        signer = published.get(kid) if kid is not None else None
        signer = signer or self.current_key(alg)
        now = datetime.now(UTC)
        payload = {"iss": self.issuer, "iat": now, "exp": now + timedelta(minutes=5), **claims}
        return jwt.encode(
            payload, signer.private_key, algorithm=signer.alg, headers={"kid": kid or signer.kid}
        )

    # -- misbehaviour ------------------------------------------------------------------------

    def fail_with(self, status: int) -> None:
        """Answer every request with this HTTP status until recover()."""
        self._failure = (status, b'{"error": "temporarily_unavailable"}')

    def serve_garbage(self, body: bytes = b"<html>502 Bad Gateway</html>") -> None:
        """Answer every request with 200 and this body until recover()."""
        self._failure = (200, body)

    def recover(self) -> None:
        self._failure = None

    def _respond(self, path: str) -> tuple[int, bytes]:
        if path == JWKS_PATH:
            with self._lock:
                self.jwks_requests += 1
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if self._failure is not None:
            return self._failure
        if path == JWKS_PATH:
            return 200, json.dumps(self.jwks()).encode()
        if path == DISCOVERY_PATH:
            document = {
                "issuer": self.issuer,
                "jwks_uri": self.jwks_url,
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }
            return 200, json.dumps(document).encode()
        return 404, b'{"error": "not_found"}'


def _handler_for(provider: FakeOidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = provider._respond(self.path.split("?", 1)[0])
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler
