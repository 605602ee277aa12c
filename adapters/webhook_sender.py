"""Sends webhook messages with aiohttp (implements application.webhook_delivery.WebhookSender).

The private-address guard sits where the address is chosen: a host name is resolved by
`GuardedResolver`, and the connector connects only to the addresses it returns, so the address
checked is the address connected to (a name that resolves to a public address when the
endpoint is saved and to 127.0.0.1 later, DNS rebinding, is refused at send time). A literal IP
in the URL is never resolved, so it is checked before the request. Redirects are not followed
(a 3xx is a failed attempt): following one would reach a target nobody checked. No proxy from
the environment, no cookies kept between messages.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from adapters.network import IPAddress, is_public, refusal
from application.webhook_delivery import MAX_RESPONSE_BODY, SendResult

TIMEOUT_SECONDS = 10.0


class RefusedTarget(OSError):
    """The target resolves to a private, loopback or link-local address."""


def _refusal(host: str, refused: list[IPAddress]) -> RefusedTarget:
    return RefusedTarget("refused target: " + refusal(host, refused))


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, and refuses a name with any address that is
    not public (unless private targets are allowed)."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            addresses = [ipaddress.ip_address(r["host"].split("%")[0]) for r in results]
            refused = [a for a in addresses if not is_public(a)]
            if refused:
                raise _refusal(host, refused)
        return results

    async def close(self) -> None:
        await self._inner.close()


async def _start_of_body(response: aiohttp.ClientResponse) -> bytes:
    """Up to MAX_RESPONSE_BODY bytes of the answer. One read returns whatever has arrived, so
    read until there is enough or the body ends. The status is the consumer's answer: a body
    that stops coming (until the time runs out) or breaks off leaves what arrived of it."""
    answer = b""
    try:
        while len(answer) < MAX_RESPONSE_BODY:
            piece = await response.content.read(MAX_RESPONSE_BODY - len(answer))
            if not piece:
                break
            answer += piece
    except (TimeoutError, aiohttp.ClientError):
        pass
    return answer


class AiohttpWebhookSender:
    """One aiohttp session (connection pool) per event loop that sends."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout_seconds: float = TIMEOUT_SECONDS,
        connections: int = 100,
    ) -> None:
        self._allow_private = allow_private
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._timeout_seconds = timeout_seconds
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self._allow_private),
                limit=self._connections,
                limit_per_host=self._connections,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return self._session

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> SendResult:
        started = time.perf_counter()

        def took() -> int:
            return round((time.perf_counter() - started) * 1000)

        try:
            self._check_literal_address(url)
            session = self._open()
            async with session.post(
                url, data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                answer = await _start_of_body(response)
                return SendResult(
                    duration_ms=took(),
                    status=response.status,
                    # Kept as text: PostgreSQL text cannot hold NUL, whatever a consumer sends.
                    body=answer.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
                    retry_after=response.headers.get("Retry-After"),
                )
        except RefusedTarget as error:
            return SendResult(duration_ms=took(), error=str(error))
        except aiohttp.ClientConnectorError as error:
            cause: Any = error.os_error
            if isinstance(cause, RefusedTarget):
                return SendResult(duration_ms=took(), error=str(cause))
            return SendResult(duration_ms=took(), error=f"could not connect: {cause}")
        except TimeoutError:
            return SendResult(
                duration_ms=took(), error=f"no answer within {self._timeout_seconds:g} s"
            )
        except (aiohttp.ClientError, ValueError, OSError) as error:
            return SendResult(duration_ms=took(), error=f"{type(error).__name__}: {error}")

    def _check_literal_address(self, url: str) -> None:
        host = urlsplit(url).hostname or ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        if not self._allow_private and not is_public(address):
            raise _refusal(host, [address])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            await asyncio.sleep(0)  # let the transports close before the loop does
