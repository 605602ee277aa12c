"""Black-box tests of /api/v1/webhooks/{id}/deliveries (API.md, "Webhooks (outbound)"): the
list with its status filter and paging, one delivery with every attempt and its message,
redelivery under the same webhook-id; permissions and tenant isolation. On SQLite and
PostgreSQL, against a real consumer on 127.0.0.1."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.api.problems import problem
from tests.conftest import Api
from tests.webhooks.consumers import Answer, Consumer, Received, consumer, deliver_until

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LIST_KEYS = {
    "deliveryId",
    "webhookId",
    "messageId",
    "eventType",
    "eventId",
    "status",
    "statusReason",
    "attempts",
    "responseStatus",
    "durationMs",
    "error",
    "lastAttemptAt",
    "nextAttemptAt",
    "createdAt",
}


def admin(api: Api, tenant_id: str) -> dict[str, str]:
    return api.as_("customer-admin", tenant=tenant_id)


def create_webhook(api: Api, tenant_id: str, hook: Consumer, events: list[str]) -> dict[str, Any]:
    response = api.request(
        "POST",
        "/webhooks",
        json={"url": hook.url, "events": events},
        auth=admin(api, tenant_id),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def listed(api: Api, tenant_id: str, webhook_id: str, **params: Any) -> Any:
    response = api.request(
        "GET", f"/webhooks/{webhook_id}/deliveries", params=params, auth=admin(api, tenant_id)
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_deliveries_are_listed_read_and_redelivered(webhook_api: Api) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]

    def fails_first(n: int, request: Received) -> Answer:
        return (503, {}, 0.0, b"warming up") if n == 1 else (200, {}, 0.0, b"ok")

    with consumer(fails_first) as hook:
        webhook = create_webhook(webhook_api, tenant_id, hook, ["person.created"])
        webhook_id = webhook["webhookId"]
        people = [webhook_api.hire(tenant_id)["personId"] for _ in range(3)]

        # Listed as soon as the write answered, before anything was sent.
        page = listed(webhook_api, tenant_id, webhook_id)
        assert page["totalCount"] == 3
        assert page["nextCursor"] is None
        first = page["deliveries"][0]
        assert set(first) == LIST_KEYS
        assert first["webhookId"] == webhook_id
        assert first["eventType"] == "person.created"
        assert first["status"] == "pending"
        assert first["attempts"] == 0
        assert first["responseStatus"] is None
        assert INSTANT.match(first["nextAttemptAt"])
        assert INSTANT.match(first["createdAt"])
        assert first["messageId"] == "msg_" + uuid.UUID(first["deliveryId"]).hex

        # The first attempt to arrive meets the 503; it is retried 0.05 s later.
        deliver_until(services, lambda: len(hook.snapshot()) >= 4)

        # Paging, in creation order.
        one = listed(webhook_api, tenant_id, webhook_id, limit=1)
        assert one["totalCount"] == 3
        two = listed(webhook_api, tenant_id, webhook_id, limit=2, cursor=one["nextCursor"])
        assert two["nextCursor"] is None
        ids = [d["deliveryId"] for d in one["deliveries"] + two["deliveries"]]
        assert ids == [d["deliveryId"] for d in page["deliveries"]]

        # One delivery: every attempt, and the message as sent.
        retried = hook.snapshot()[0]
        delivery_id = uuid.UUID(retried.msg_id.removeprefix("msg_"))
        response = webhook_api.request(
            "GET",
            f"/webhooks/{webhook_id}/deliveries/{delivery_id}",
            auth=admin(webhook_api, tenant_id),
        )
        assert response.status_code == 200, response.text
        delivery = response.json()
        assert delivery["deliveryId"] == str(delivery_id)
        assert delivery["payload"] == retried.json()
        assert delivery["payload"]["data"]["aggregateId"] in people
        history = delivery["attemptHistory"]
        assert delivery["attempts"] == 2
        assert delivery["status"] == "succeeded"
        assert delivery["responseStatus"] == 200
        assert [(a["attempt"], a["responseStatus"], a["responseBody"]) for a in history] == [
            (1, 503, "warming up"),
            (2, 200, "ok"),
        ]
        assert all(INSTANT.match(a["attemptedAt"]) for a in history)
        assert all(isinstance(a["durationMs"], int) for a in history)

        # Every delivery ends up succeeded; the filter finds them.
        assert listed(webhook_api, tenant_id, webhook_id, status="succeeded")["totalCount"] == 3
        assert listed(webhook_api, tenant_id, webhook_id, status="failed")["totalCount"] == 0

        # Redeliver: due now, the same webhook-id and bytes, one more attempt recorded.
        sent_before = len(hook.snapshot())
        again = webhook_api.request(
            "POST",
            f"/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
            auth=admin(webhook_api, tenant_id),
        )
        assert again.status_code == 202, again.text
        assert again.json()["status"] == "pending"
        assert INSTANT.match(again.json()["nextAttemptAt"])
        services.dispatcher.run_once()
        received = hook.wait_for(sent_before + 1)
        repeat = received[-1]
        assert repeat.msg_id == retried.msg_id
        assert repeat.body == retried.body
        after = webhook_api.request(
            "GET",
            f"/webhooks/{webhook_id}/deliveries/{delivery_id}",
            auth=admin(webhook_api, tenant_id),
        ).json()
        assert after["status"] == "succeeded"
        assert after["attempts"] == delivery["attempts"] + 1
        assert len(after["attemptHistory"]) == after["attempts"]


def test_a_test_ping_is_listed_under_the_id_the_ping_returned(webhook_api: Api) -> None:
    services = webhook_api.services
    tenant_id = webhook_api.provision()["tenantId"]
    with consumer() as hook:
        webhook = create_webhook(webhook_api, tenant_id, hook, ["customer.created"])
        webhook_id = webhook["webhookId"]
        pinged = webhook_api.request(
            "POST", f"/webhooks/{webhook_id}/test", auth=admin(webhook_api, tenant_id)
        )
        assert pinged.status_code == 202, pinged.text
        services.dispatcher.run_once()
        (message,) = hook.wait_for(1)
    message.verify(webhook["secret"])
    (delivery,) = listed(webhook_api, tenant_id, webhook_id)["deliveries"]
    assert delivery["deliveryId"] == pinged.json()["deliveryId"]
    assert delivery["eventType"] == "webhook.test"
    assert delivery["status"] == "succeeded"
    assert message.json()["type"] == "webhook.test"


def test_deliveries_are_the_tenants_own_and_need_webhook_manage(webhook_api: Api) -> None:
    tenant_id = webhook_api.provision()["tenantId"]
    other_tenant = webhook_api.provision()["tenantId"]
    with consumer() as hook:
        webhook_id = create_webhook(webhook_api, tenant_id, hook, ["*"])["webhookId"]
        webhook_api.hire(tenant_id)
    (delivery,) = listed(webhook_api, tenant_id, webhook_id)["deliveries"]
    did = delivery["deliveryId"]
    paths = [
        ("GET", f"/webhooks/{webhook_id}/deliveries"),
        ("GET", f"/webhooks/{webhook_id}/deliveries/{did}"),
        ("POST", f"/webhooks/{webhook_id}/deliveries/{did}/redeliver"),
    ]
    for method, path in paths:
        # Another tenant's endpoint and delivery: not found, never forbidden.
        response = webhook_api.request(method, path, auth=admin(webhook_api, other_tenant))
        problem(response, 404, code="not-found")
        for role in ("member", "auditor", "finance"):
            denied = webhook_api.request(method, path, auth=webhook_api.as_(role, tenant=tenant_id))
            problem(denied, 403, code="forbidden")
        problem(webhook_api.request(method, path), 401)
    unknown = uuid.uuid4()
    for method, path in [
        ("GET", f"/webhooks/{unknown}/deliveries"),
        ("GET", f"/webhooks/{webhook_id}/deliveries/{unknown}"),
        ("POST", f"/webhooks/{webhook_id}/deliveries/{unknown}/redeliver"),
    ]:
        problem(webhook_api.request(method, path, auth=admin(webhook_api, tenant_id)), 404)
    # A delivery is found only under its own endpoint.
    with consumer() as hook:
        second = create_webhook(webhook_api, tenant_id, hook, ["*"])["webhookId"]
    problem(
        webhook_api.request(
            "GET", f"/webhooks/{second}/deliveries/{did}", auth=admin(webhook_api, tenant_id)
        ),
        404,
    )
    # A deleted endpoint's deliveries are gone with it.
    deleted = webhook_api.request(
        "DELETE", f"/webhooks/{webhook_id}", auth=admin(webhook_api, tenant_id)
    )
    assert deleted.status_code == 204, deleted.text
    for method, path in paths:
        problem(webhook_api.request(method, path, auth=admin(webhook_api, tenant_id)), 404)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"status": "PENDING"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "nonsense"}, "cursor"),
    ],
)
def test_bad_list_parameters_are_400_naming_them(
    webhook_api: Api, params: dict[str, Any], field: str
) -> None:
    tenant_id = webhook_api.provision()["tenantId"]
    with consumer() as hook:
        webhook_id = create_webhook(webhook_api, tenant_id, hook, ["*"])["webhookId"]
    response = webhook_api.request(
        "GET",
        f"/webhooks/{webhook_id}/deliveries",
        params=params,
        auth=admin(webhook_api, tenant_id),
    )
    problem(response, 400, field=field)
