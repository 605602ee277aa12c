"""The hello-world yardstick: the least a Litestar app on uvicorn can do per request.

Served exactly like `workledger serve` serves the real app (one uvicorn worker, same loop and
HTTP implementation, no access log), so the ratio to it is the cost of workledger's own work.

    .venv/bin/python -m uvicorn tests.benchmarks.hello_app:app --port 8001
"""

from __future__ import annotations

import msgspec
from litestar import Litestar, get, post


class Greeting(msgspec.Struct, rename="camel", forbid_unknown_fields=True, frozen=True):
    name: str
    employee_reference: str
    count: int = 0


@get("/hello", sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"status": "ok", "greeting": "hello"}


@post("/echo", sync_to_thread=False, status_code=201)
def echo(data: Greeting) -> Greeting:
    return data


app = Litestar(route_handlers=[hello, echo], debug=False)
