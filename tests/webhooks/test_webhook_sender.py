"""The aiohttp sender against consumers that answer awkwardly: a body that arrives in pieces, a
huge body, an answer whose body never ends. Raw sockets on 127.0.0.1, so the test decides
exactly what goes on the wire and when."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from adapters.webhook_sender import AiohttpWebhookSender
from application.webhook_delivery import MAX_RESPONSE_BODY, SendResult

Pieces = list[tuple[float, bytes]]  # (seconds to wait first, bytes to write)


@contextmanager
def raw_consumer(pieces: Pieces) -> Iterator[str]:
    """A consumer that reads one request and writes `pieces` as they come, then holds the
    connection open until the test ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for wait, data in pieces:
                time.sleep(wait)
                try:
                    connection.sendall(data)
                except OSError:  # the sender has read enough and hung up
                    return
            done.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        done.set()
        thread.join(5)
        listener.close()


def send(url: str, timeout: float = 5.0) -> SendResult:
    async def once() -> SendResult:
        sender = AiohttpWebhookSender(allow_private=True, timeout_seconds=timeout)
        try:
            return await sender.send(url, {"content-type": "application/json"}, b"{}")
        finally:
            await sender.close()

    return asyncio.run(once())


def head(status: str, length: int) -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-length: {length}\r\n\r\n".encode()


def test_a_body_that_arrives_in_pieces_is_recorded_whole() -> None:
    body = b'{"error": "database down", "retry": true}'
    pieces = [(0.0, head("500 Internal Server Error", len(body)) + body[:10])]
    pieces += [(0.05, body[10:20]), (0.05, body[20:])]
    with raw_consumer(pieces) as url:
        result = send(url)
    assert (result.status, result.error) == (500, None)
    assert result.body == body.decode()


def test_only_the_first_kib_of_a_long_body_is_kept_however_it_arrives() -> None:
    body = bytes(range(65, 91)) * 200  # 5,200 bytes of A-Z
    pieces = [(0.0, head("503 Service Unavailable", len(body)) + body[:100])]
    pieces += [(0.02, body[i : i + 300]) for i in range(100, len(body), 300)]
    with raw_consumer(pieces) as url:
        result = send(url)
    assert result.status == 503
    assert result.body == body[:MAX_RESPONSE_BODY].decode()


def test_a_huge_body_is_not_read_to_the_end() -> None:
    size = 200 * 1024 * 1024  # never sent in full: the sender hangs up after its KiB
    pieces = [(0.0, head("200 OK", size))] + [(0.0, b"x" * 65536)] * 64
    with raw_consumer(pieces) as url:
        started = time.monotonic()
        result = send(url)
    assert time.monotonic() - started < 3
    assert (result.status, result.error, result.body) == (200, None, "x" * MAX_RESPONSE_BODY)
    assert result.succeeded


@pytest.mark.parametrize("begun", [b"", b"accepted"])
def test_an_answer_whose_body_never_ends_keeps_its_status(begun: bytes) -> None:
    """The consumer answered 200 and then stalled: it has the message, so the attempt
    succeeded, with what arrived of the body."""
    with raw_consumer([(0.0, head("200 OK", 100) + begun)]) as url:
        result = send(url, timeout=0.5)
    assert (result.status, result.error, result.body) == (200, None, begun.decode())
    assert result.succeeded


def test_a_consumer_that_never_answers_times_out() -> None:
    with raw_consumer([]) as url:
        result = send(url, timeout=0.3)
    assert result.status is None
    assert result.error == "no answer within 0.3 s"
    assert 250 <= result.duration_ms < 2000


def test_a_consumer_that_hangs_up_is_an_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/hook"

    def hang_up() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        result = send(url)
    finally:
        thread.join(5)
        listener.close()
    assert result.status is None
    assert result.error is not None
    assert "disconnected" in result.error.lower()
