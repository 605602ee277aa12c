"""A fast webhook consumer for bench_webhooks, in a process of its own (so neither the
dispatcher nor the baseline client shares its interpreter).

    python -m tests.benchmarks.webhook_consumer --port 8123

`POST` to any path: recorded (arrival time, `webhook-id`, body) and answered 200 at once.
`GET /received?after=N`: the records after the N-th, as JSON `[[at, id, body], ...]`.
`GET /count`: how many so far. `POST /reset` (path `/reset`): forget them.
"""

from __future__ import annotations

import argparse
import time

from aiohttp import web

RECEIVED: list[tuple[float, str, str]] = []


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    RECEIVED.append((time.time(), request.headers.get("webhook-id", ""), body.decode()))
    return web.Response(text="ok")


async def received(request: web.Request) -> web.Response:
    after = int(request.query.get("after", "0"))
    return web.json_response(RECEIVED[after:])


async def count(request: web.Request) -> web.Response:
    return web.json_response(len(RECEIVED))


async def reset(request: web.Request) -> web.Response:
    RECEIVED.clear()
    return web.json_response(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/received", received)
    app.router.add_get("/count", count)
    app.router.add_post("/reset", reset)
    app.router.add_post("/{tail:.*}", receive)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
