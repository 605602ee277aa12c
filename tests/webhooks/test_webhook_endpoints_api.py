"""Black-box tests of /api/v1/webhooks, the endpoint management API (API.md, "Webhooks
(outbound)"): create with a secret shown once, list, read, full replacement with If-Match,
enable/disable, delete, secret rotation with a 24-hour overlap, test pings; validation naming
fields, the private-target rule and its setting, roles, tenant isolation, suspended tenants,
the audit trail, and replay of the read model. On SQLite and PostgreSQL.

Targets are literal IP addresses: the tests never resolve an internet host name.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks

from adapters.system import RandomIds, SystemClock, SystemEntropy
from application.event_log import EventLog
from application.ports import WebhookSecrets, WebhookTargets
from application.webhooks import MAX_ENDPOINTS, CreateWebhook, WebhookCommands, WebhookReadModel
from domain.webhook import PUBLIC_EVENT_TYPES, WebhookEndpoint, delivery_id
from tests.api.problems import problem
from tests.conftest import Api
from tests.integration.workload import context

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SECRET = re.compile(r"^whsec_[A-Za-z0-9+/]{32}$")  # 24 bytes, base64 without padding
KEYS = {
    "webhookId",
    "url",
    "events",
    "description",
    "status",
    "disabledReason",
    "secretRotatedAt",
    "createdAt",
    "updatedAt",
}
PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "[2606:4700:4700::1111]"
PRIVATE_TARGETS = [
    "http://127.0.0.1:8080/hook",
    "http://127.1/hook",
    "http://localhost/hook",
    "https://10.1.2.3/hook",
    "https://192.168.0.10/hook",
    "https://172.16.5.5/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
]
ROLES_WITHOUT_WEBHOOK_MANAGE = ["member", "auditor", "finance", "project-manager", "squad-lead"]


def admin(api: Api, tenant_id: str, sub: str = "integrations") -> dict[str, str]:
    return api.as_("customer-admin", tenant=tenant_id, sub=sub)


def url(n: int | str = 1) -> str:
    return f"https://{PUBLIC_V4}/hooks/{n}"


def create(api: Api, tenant_id: str, **fields: Any) -> Any:
    body = {"url": url(uuid.uuid4().hex[:6]), "events": ["person.created"], **fields}
    response = api.request("POST", "/webhooks", json=body, auth=admin(api, tenant_id))
    assert response.status_code == 201, response.text
    return response.json()


def get(api: Api, tenant_id: str, webhook_id: str) -> Any:
    return api.request("GET", f"/webhooks/{webhook_id}", auth=admin(api, tenant_id))


def listed(api: Api, tenant_id: str, **params: Any) -> Any:
    response = api.request("GET", "/webhooks", params=params, auth=admin(api, tenant_id))
    assert response.status_code == 200, response.text
    return response.json()


def audit(api: Api, tenant_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.request(
        "GET",
        "/audit/events",
        params={"limit": 200, **params},
        auth=api.as_("auditor", tenant=tenant_id),
    )
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def stored_secret(api: Api, tenant_id: str, secret_id: str) -> str:
    found = api.services.get(WebhookSecrets).get(uuid.UUID(tenant_id), [uuid.UUID(secret_id)])
    return found[uuid.UUID(secret_id)]


def assert_signs(secret: str) -> None:
    """The independent Standard Webhooks implementation takes the secret as it is shown and
    verifies what it signs."""
    hook = standardwebhooks.Webhook(secret)
    at = datetime.now(UTC)
    body = '{"type":"webhook.test"}'
    signature = hook.sign("msg_1", at, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(at.timestamp()))}
    assert hook.verify(body, {**headers, "webhook-signature": signature}) == json.loads(body)


def keys_of(value: Any) -> set[str]:
    """Every key of every object inside a JSON value."""
    if isinstance(value, dict):
        return set(value).union(*(keys_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(v) for v in value))
    return set()


# -- create and read ---------------------------------------------------------------------------


def test_create_shows_the_secret_once(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    body = {
        "url": f" https://{PUBLIC_V4}:8443/in?src=workledger ",
        "events": ["person.created", "invoice.paid", "person.created"],
        "description": " Our CRM ",
    }

    response = api.request("POST", "/webhooks", json=body, auth=admin(api, tenant_id))

    assert response.status_code == 201, response.text
    created = response.json()
    webhook_id = created["webhookId"]
    assert str(uuid.UUID(webhook_id)) == webhook_id
    assert created.keys() == KEYS | {"secret"}
    assert response.headers["location"] == f"/api/v1/webhooks/{webhook_id}"
    assert response.headers["etag"] == '"1"'
    assert int(response.headers["x-log-position"]) >= 1
    assert created["url"] == f"https://{PUBLIC_V4}:8443/in?src=workledger"
    assert created["events"] == ["person.created", "invoice.paid"]
    assert created["description"] == "Our CRM"
    assert (created["status"], created["disabledReason"]) == ("enabled", None)
    assert created["secretRotatedAt"] is None
    assert INSTANT.match(created["createdAt"])
    assert created["updatedAt"] == created["createdAt"]

    secret = created["secret"]
    assert SECRET.match(secret), secret
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert_signs(secret)
    # The secret stored for signing is the one shown, named in the log by its id only.
    [event] = audit(api, tenant_id, aggregateId=webhook_id)
    assert event["type"] == "WebhookEndpointCreated"
    assert stored_secret(api, tenant_id, event["data"]["secretId"]) == secret

    fetched = get(api, tenant_id, webhook_id)
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == '"1"'
    assert fetched.json() == {k: v for k, v in created.items() if k != "secret"}
    everywhere = [fetched, api.request("GET", "/webhooks", auth=admin(api, tenant_id))]
    everywhere.append(
        api.request("GET", "/audit/events", auth=api.as_("auditor", tenant=tenant_id))
    )
    everywhere.append(
        api.request(
            "GET",
            f"/audit/streams/{webhook_id}/state",
            params={"version": 1},
            auth=api.as_("auditor", tenant=tenant_id),
        )
    )
    for answer in everywhere:
        assert answer.status_code == 200, answer.text
        assert secret.removeprefix("whsec_") not in answer.text
        assert "secret" not in keys_of(answer.json())


def test_every_event_type_and_the_wildcard_are_accepted(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    everything = sorted(PUBLIC_EVENT_TYPES)
    assert create(api, tenant_id, events=everything)["events"] == everything
    assert create(api, tenant_id, events=["*"])["events"] == ["*"]
    ipv6 = create(api, tenant_id, url=f"https://{PUBLIC_V6}/hook")
    assert ipv6["url"] == f"https://{PUBLIC_V6}/hook"
    assert ipv6["description"] is None


def test_list_is_in_creation_order_with_cursors(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    other_tenant = api.provision()["tenantId"]
    ids = [create(api, tenant_id, url=url(n))["webhookId"] for n in range(3)]
    create(api, other_tenant)

    everything = listed(api, tenant_id)
    assert [w["webhookId"] for w in everything["webhooks"]] == ids
    assert everything["totalCount"] == 3
    assert everything["nextCursor"] is None
    assert all(w.keys() == KEYS for w in everything["webhooks"])

    first = listed(api, tenant_id, limit=2)
    assert [w["webhookId"] for w in first["webhooks"]] == ids[:2]
    assert first["totalCount"] == 3
    rest = listed(api, tenant_id, limit=2, cursor=first["nextCursor"])
    assert [w["webhookId"] for w in rest["webhooks"]] == ids[2:]
    assert rest["nextCursor"] is None

    bad = api.request("GET", "/webhooks", params={"limit": 0}, auth=admin(api, tenant_id))
    problem(bad, 400, field="limit")
    bad = api.request("GET", "/webhooks", params={"cursor": "nope"}, auth=admin(api, tenant_id))
    problem(bad, 400, field="cursor")


# -- update, enable, disable -------------------------------------------------------------------


def test_put_replaces_the_configuration_with_if_match(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    created = create(api, tenant_id, description="first")
    path = f"/webhooks/{created['webhookId']}"
    new = {"url": url("moved"), "events": ["*"]}

    stale = api.request(
        "PUT", path, json=new, headers={"If-Match": '"7"'}, auth=admin(api, tenant_id)
    )
    problem(stale, 412, code="precondition-failed")

    response = api.request(
        "PUT", path, json=new, headers={"If-Match": '"1"'}, auth=admin(api, tenant_id)
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated.keys() == KEYS
    assert response.headers["etag"] == '"2"'
    assert int(response.headers["x-log-position"]) > 0
    assert (updated["url"], updated["events"]) == (url("moved"), ["*"])
    assert updated["description"] is None  # absent in a PUT: cleared
    assert updated["status"] == "enabled"
    assert updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] >= created["updatedAt"]
    assert get(api, tenant_id, created["webhookId"]).json() == updated

    same = api.request("PUT", path, json={**new, "description": None}, auth=admin(api, tenant_id))
    assert same.status_code == 200
    assert same.headers["etag"] == '"2"'  # nothing changed, nothing recorded

    [event] = audit(api, tenant_id, type="WebhookEndpointUpdated")
    assert event["data"]["changedFields"] == ["url", "events", "description"]
    assert event["actor"] == "user:integrations"


def test_enabled_false_disables_and_true_enables_again(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    created = create(api, tenant_id)
    path = f"/webhooks/{created['webhookId']}"
    config = {"url": created["url"], "events": created["events"]}
    auth = admin(api, tenant_id, sub="ada")

    disabled = api.request("PUT", path, json={**config, "enabled": False}, auth=auth)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["status"] == "disabled"
    assert disabled.json()["disabledReason"] == "disabled by user:ada"
    assert disabled.headers["etag"] == '"2"'

    again = api.request("PUT", path, json={**config, "enabled": False}, auth=auth)
    assert again.headers["etag"] == '"2"'  # already disabled: nothing recorded
    kept = api.request("PUT", path, json=config, auth=auth)  # no `enabled`: status kept
    assert kept.json()["status"] == "disabled"
    assert kept.headers["etag"] == '"2"'

    enabled = api.request("PUT", path, json={**config, "events": ["*"], "enabled": True}, auth=auth)
    assert enabled.status_code == 200, enabled.text
    assert (enabled.json()["status"], enabled.json()["disabledReason"]) == ("enabled", None)
    assert enabled.json()["events"] == ["*"]
    assert enabled.headers["etag"] == '"4"'  # the update and the enabling, in one write

    types = [e["type"] for e in audit(api, tenant_id, aggregateId=created["webhookId"])]
    assert types == [
        "WebhookEndpointCreated",
        "WebhookEndpointDisabled",
        "WebhookEndpointUpdated",
        "WebhookEndpointEnabled",
    ]


# -- delete ------------------------------------------------------------------------------------


def test_delete_answers_204_and_the_endpoint_is_gone(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    kept = create(api, tenant_id)["webhookId"]
    webhook_id = create(api, tenant_id)["webhookId"]
    path = f"/webhooks/{webhook_id}"
    auth = admin(api, tenant_id)

    stale = api.request("DELETE", path, headers={"If-Match": '"5"'}, auth=auth)
    problem(stale, 412, code="precondition-failed")
    assert get(api, tenant_id, webhook_id).status_code == 200

    response = api.request("DELETE", path, headers={"If-Match": '"1"'}, auth=auth)

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert int(response.headers["x-log-position"]) > 0
    problem(get(api, tenant_id, webhook_id), 404, code="not-found")
    config = {"url": url(), "events": ["*"]}
    for method, suffix, kwargs in [
        ("PUT", "", {"json": config}),
        ("DELETE", "", {}),
        ("POST", "/rotate-secret", {}),
        ("POST", "/test", {}),
    ]:
        problem(api.request(method, path + suffix, auth=auth, **kwargs), 404, code="not-found")
    assert [w["webhookId"] for w in listed(api, tenant_id)["webhooks"]] == [kept]
    assert listed(api, tenant_id)["totalCount"] == 1

    # The history stays: the audit trail shows the deletion and the last state.
    events = audit(api, tenant_id, aggregateId=webhook_id)
    assert [e["type"] for e in events] == ["WebhookEndpointCreated", "WebhookEndpointDeleted"]
    state = api.request(
        "GET",
        f"/audit/streams/{webhook_id}/state",
        params={"version": 2},
        auth=api.as_("auditor", tenant=tenant_id),
    )
    assert state.status_code == 200, state.text
    assert state.json()["state"]["status"] == "deleted"


# -- rotation ----------------------------------------------------------------------------------


def test_rotation_gives_a_new_secret_and_the_old_one_signs_for_24_hours(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    created = create(api, tenant_id)
    webhook_id = created["webhookId"]
    before = datetime.now(UTC)

    response = api.request(
        "POST", f"/webhooks/{webhook_id}/rotate-secret", auth=admin(api, tenant_id)
    )

    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated.keys() == KEYS | {"secret", "previousSecretValidUntil"}
    assert response.headers["etag"] == '"2"'
    assert int(response.headers["x-log-position"]) > 0
    assert SECRET.match(rotated["secret"])
    assert rotated["secret"] != created["secret"]
    assert_signs(rotated["secret"])
    until = datetime.fromisoformat(rotated["previousSecretValidUntil"].replace("Z", "+00:00"))
    assert INSTANT.match(rotated["previousSecretValidUntil"])
    slack = timedelta(milliseconds=1)
    assert before + timedelta(hours=24) - slack <= until <= after + timedelta(hours=24)
    assert INSTANT.match(rotated["secretRotatedAt"])
    assert rotated["updatedAt"] == rotated["secretRotatedAt"]
    fetched = get(api, tenant_id, webhook_id)
    assert fetched.json() == {
        k: v for k, v in rotated.items() if k not in ("secret", "previousSecretValidUntil")
    }
    assert "whsec_" not in fetched.text

    [event] = audit(api, tenant_id, type="WebhookEndpointSecretRotated")
    data = event["data"]
    assert datetime.fromisoformat(data["previousValidUntil"].replace("Z", "+00:00")) == until
    assert stored_secret(api, tenant_id, data["secretId"]) == rotated["secret"]
    assert stored_secret(api, tenant_id, data["previousSecretId"]) == created["secret"]
    assert "whsec_" not in json.dumps(audit(api, tenant_id))

    # What the dispatcher signs with: both secrets until the overlap ends, then the new one.
    endpoint = api.services.log.load(WebhookEndpoint, uuid.UUID(webhook_id))
    assert endpoint is not None
    new, old = uuid.UUID(data["secretId"]), uuid.UUID(data["previousSecretId"])
    assert endpoint.signing_secret_ids(after) == [new, old]
    assert endpoint.signing_secret_ids(until) == [new]

    again = api.request("POST", f"/webhooks/{webhook_id}/rotate-secret", auth=admin(api, tenant_id))
    assert again.status_code == 200
    assert len({created["secret"], rotated["secret"], again.json()["secret"]}) == 3


# -- test pings --------------------------------------------------------------------------------


def test_a_test_ping_is_recorded_and_names_its_delivery(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    webhook_id = create(api, tenant_id)["webhookId"]
    path = f"/webhooks/{webhook_id}"

    response = api.request("POST", f"{path}/test", auth=admin(api, tenant_id, sub="tester-1"))

    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer.keys() == {"webhookId", "pingId", "deliveryId"}
    assert answer["webhookId"] == webhook_id
    assert int(response.headers["x-log-position"]) > 0
    version = int(get(api, tenant_id, webhook_id).headers["etag"].strip('"'))
    assert version == 2
    endpoint = uuid.UUID(webhook_id)
    assert answer["deliveryId"] == str(delivery_id(endpoint, endpoint, version))
    [event] = audit(api, tenant_id, type="WebhookEndpointPinged")
    assert event["data"]["pingId"] == answer["pingId"]
    assert (event["aggregateId"], event["version"]) == (webhook_id, version)
    assert event["actor"] == "user:tester-1"
    # A ping changes nothing about the endpoint itself.
    assert (
        get(api, tenant_id, webhook_id).json()["updatedAt"]
        == get(api, tenant_id, webhook_id).json()["createdAt"]
    )

    # A disabled endpoint may be pinged: that is how a client checks it before enabling it.
    config = {"url": url(), "events": ["*"], "enabled": False}
    assert api.request("PUT", path, json=config, auth=admin(api, tenant_id)).status_code == 200
    second = api.request("POST", f"{path}/test", auth=admin(api, tenant_id))
    assert second.status_code == 202, second.text
    assert second.json()["pingId"] != answer["pingId"]
    assert second.json()["deliveryId"] == str(delivery_id(endpoint, endpoint, 5))


# -- validation --------------------------------------------------------------------------------


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"url": "ftp://93.184.216.34/hook", "events": ["*"]}, "url"),
    ({"url": "javascript:alert(1)", "events": ["*"]}, "url"),
    ({"url": "/relative/hook", "events": ["*"]}, "url"),
    ({"url": "93.184.216.34/hook", "events": ["*"]}, "url"),
    ({"url": "https://user:pw@93.184.216.34/hook", "events": ["*"]}, "url"),
    ({"url": "https://token@93.184.216.34/hook", "events": ["*"]}, "url"),
    ({"url": "https://93.184.216.34:70000/hook", "events": ["*"]}, "url"),
    ({"url": "https://93.184.216.34/a b", "events": ["*"]}, "url"),
    ({"url": "https://[::1/hook", "events": ["*"]}, "url"),
    ({"url": "", "events": ["*"]}, "url"),
    ({"url": "https://93.184.216.34/" + "x" * 2000, "events": ["*"]}, "url"),
    ({"url": 42, "events": ["*"]}, "url"),
    ({"events": ["*"]}, "url"),
    ({"url": url(), "events": ["person.exploded"]}, "events"),
    ({"url": url(), "events": ["webhook.test"]}, "events"),
    ({"url": url(), "events": []}, "events"),
    ({"url": url(), "events": ["*", "person.created"]}, "events"),
    ({"url": url(), "events": "person.created"}, "events"),
    ({"url": url()}, "events"),
    ({"url": url(), "events": ["*"], "description": "d" * 501}, "description"),
    ({"url": url(), "events": ["*"], "secret": "whsec_mine"}, "secret"),
    ({"url": url(), "events": ["*"], "enabled": False}, "enabled"),
    ({"url": url(), "events": ["*"], "webhookId": str(uuid.uuid4())}, "webhookId"),
]


def test_bad_input_is_400_naming_the_field_and_changes_nothing(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    existing = create(api, tenant_id)
    path = f"/webhooks/{existing['webhookId']}"
    auth = admin(api, tenant_id)
    head = api.services.log.head()

    for body, field in BAD_BODIES:
        created = api.request("POST", "/webhooks", json=body, auth=auth)
        problem(created, 400, field=field)
        if field in ("enabled", "webhookId"):  # PUT takes `enabled`; `webhookId` is in the path
            continue
        replaced = api.request("PUT", path, json=body, auth=auth)
        problem(replaced, 400, field=field)

    assert api.services.log.head() == head
    assert listed(api, tenant_id)["totalCount"] == 1
    assert get(api, tenant_id, existing["webhookId"]).json() == {
        k: v for k, v in existing.items() if k != "secret"
    }
    not_json = api.request(
        "POST", "/webhooks", content=b"url=x", headers={"Content-Type": "text/plain"}, auth=auth
    )
    problem(not_json, 415)


# -- private targets ---------------------------------------------------------------------------


def test_private_targets_are_refused_by_default(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    existing = create(api, tenant_id)
    auth = admin(api, tenant_id)
    head = api.services.log.head()

    for target in PRIVATE_TARGETS:
        body = {"url": target, "events": ["*"]}
        refused = problem(api.request("POST", "/webhooks", json=body, auth=auth), 400, field="url")
        assert "private, loopback or link-local" in refused["errors"][0]["message"], refused
        problem(
            api.request("PUT", f"/webhooks/{existing['webhookId']}", json=body, auth=auth),
            400,
            field="url",
        )

    assert api.services.log.head() == head
    assert listed(api, tenant_id)["totalCount"] == 1


def test_private_targets_are_accepted_when_the_setting_allows_them(
    private_webhook_api: Api,
) -> None:
    api = private_webhook_api
    tenant_id = api.provision()["tenantId"]

    for target in PRIVATE_TARGETS:
        created = create(api, tenant_id, url=target, events=["*"])
        assert created["url"] == target
        assert SECRET.match(created["secret"])

    assert listed(api, tenant_id)["totalCount"] == len(PRIVATE_TARGETS)
    # The shape rules still hold.
    body = {"url": "ftp://127.0.0.1/", "events": ["*"]}
    problem(
        api.request("POST", "/webhooks", json=body, auth=admin(api, tenant_id)), 400, field="url"
    )


# -- who may -----------------------------------------------------------------------------------


def test_only_webhook_managers_may_see_or_touch_endpoints(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    webhook_id = create(api, tenant_id)["webhookId"]
    path = f"/webhooks/{webhook_id}"
    head = api.services.log.head()
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/webhooks", {"json": {"url": url(), "events": ["*"]}}),
        ("GET", "/webhooks", {}),
        ("GET", path, {}),
        ("PUT", path, {"json": {"url": url(), "events": ["*"]}}),
        ("DELETE", path, {}),
        ("POST", f"{path}/rotate-secret", {}),
        ("POST", f"{path}/test", {}),
    ]

    for role in ROLES_WITHOUT_WEBHOOK_MANAGE:
        for method, target, kwargs in calls:
            response = api.request(method, target, auth=api.as_(role, tenant=tenant_id), **kwargs)
            body = problem(response, 403, code="forbidden")
            assert "webhook:manage" in body["detail"], (role, method, target)
        for method, target, kwargs in calls:
            problem(api.request(method, target, **kwargs), 401)

    assert api.services.log.head() == head
    # A platform admin acts in a tenant it names.
    as_platform = api.request(
        "GET", path, params={"tenantId": tenant_id}, auth=api.as_("platform-admin")
    )
    assert as_platform.status_code == 200, as_platform.text


def test_another_tenants_endpoint_is_not_found(api: Api) -> None:
    owner = api.provision()["tenantId"]
    intruder = api.provision()["tenantId"]
    created = create(api, owner)
    path = f"/webhooks/{created['webhookId']}"
    auth = admin(api, intruder)
    head = api.services.log.head()

    for method, suffix, kwargs in [
        ("GET", "", {}),
        ("PUT", "", {"json": {"url": url(), "events": ["*"]}}),
        ("PUT", "", {"json": {"url": url(), "events": ["*"]}, "headers": {"If-Match": '"9"'}}),
        ("DELETE", "", {}),
        ("POST", "/rotate-secret", {}),
        ("POST", "/test", {}),
    ]:
        problem(api.request(method, path + suffix, auth=auth, **kwargs), 404, code="not-found")
    problem(api.request("GET", f"/webhooks/{uuid.uuid4()}", auth=auth), 404, code="not-found")
    assert listed(api, intruder) == {"webhooks": [], "totalCount": 0, "nextCursor": None}

    assert api.services.log.head() == head
    assert get(api, owner, created["webhookId"]).json()["url"] == created["url"]


def test_a_suspended_tenant_reads_but_cannot_change_its_endpoints(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    webhook_id = create(api, tenant_id)["webhookId"]
    path = f"/webhooks/{webhook_id}"
    suspended = api.request("POST", f"/tenants/{tenant_id}/suspend", auth=api.as_("platform-admin"))
    assert suspended.status_code == 200, suspended.text
    auth = admin(api, tenant_id)

    for method, target, kwargs in [
        ("POST", "/webhooks", {"json": {"url": url(), "events": ["*"]}}),
        ("PUT", path, {"json": {"url": url(), "events": ["*"]}}),
        ("DELETE", path, {}),
        ("POST", f"{path}/rotate-secret", {}),
        ("POST", f"{path}/test", {}),
    ]:
        problem(api.request(method, target, auth=auth, **kwargs), 403, code="tenant-not-active")
    assert get(api, tenant_id, webhook_id).status_code == 200
    assert listed(api, tenant_id)["totalCount"] == 1


# -- audit trail and replay --------------------------------------------------------------------


def test_the_audit_trail_shows_every_change_with_its_actor(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = admin(api, tenant_id, sub="grace")
    created = create(api, tenant_id, description="CRM")
    webhook_id = created["webhookId"]
    path = f"/webhooks/{webhook_id}"
    steps = [
        ("PUT", path, {"json": {"url": url("v2"), "events": ["*"], "enabled": False}}),
        ("POST", f"{path}/rotate-secret", {}),
        ("POST", f"{path}/test", {}),
        ("PUT", path, {"json": {"url": url("v2"), "events": ["*"], "enabled": True}}),
        ("DELETE", path, {}),
    ]
    for method, target, kwargs in steps:
        response = api.request(method, target, auth=auth, **kwargs)
        assert response.status_code < 300, response.text

    events = audit(api, tenant_id, aggregateId=webhook_id)

    assert [(e["type"], e["version"]) for e in events] == [
        ("WebhookEndpointCreated", 1),
        ("WebhookEndpointUpdated", 2),
        ("WebhookEndpointDisabled", 3),
        ("WebhookEndpointSecretRotated", 4),
        ("WebhookEndpointPinged", 5),
        ("WebhookEndpointEnabled", 6),
        ("WebhookEndpointDeleted", 7),
    ]
    assert {e["aggregateType"] for e in events} == {"WebhookEndpoint"}
    assert [e["actor"] for e in events] == ["user:integrations"] + ["user:grace"] * 6
    assert events[2]["data"]["reason"] == "disabled by user:grace"
    assert "whsec_" not in json.dumps(events)

    def state(version: int) -> dict[str, Any]:
        response = api.request(
            "GET",
            f"/audit/streams/{webhook_id}/state",
            params={"version": version},
            auth=api.as_("auditor", tenant=tenant_id),
        )
        assert response.status_code == 200, response.text
        assert response.json()["aggregateType"] == "WebhookEndpoint"
        return dict(response.json()["state"])

    first = state(1)
    assert first == {k: v for k, v in created.items() if k != "secret"}
    assert state(3)["status"] == "disabled"
    assert state(3)["disabledReason"] == "disabled by user:grace"
    assert state(4)["secretRotatedAt"] is not None
    assert state(6)["status"] == "enabled"


def test_replaying_rebuilds_the_webhooks_read_model(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    auth = admin(api, tenant_id)
    ids = [create(api, tenant_id, url=url(n))["webhookId"] for n in range(4)]
    config = {"url": url("x"), "events": ["*"], "description": "moved", "enabled": False}
    assert api.request("PUT", f"/webhooks/{ids[0]}", json=config, auth=auth).status_code == 200
    assert api.request("POST", f"/webhooks/{ids[1]}/rotate-secret", auth=auth).status_code == 200
    assert api.request("POST", f"/webhooks/{ids[2]}/test", auth=auth).status_code == 202
    assert api.request("DELETE", f"/webhooks/{ids[3]}", auth=auth).status_code == 204

    def snapshot() -> list[Any]:
        return api.services.db.query("SELECT * FROM rm_webhooks ORDER BY tenant_id, webhook_id")

    live = snapshot()
    assert len(live) == 3
    api.services.projections.replay()
    assert snapshot() == live


@pytest.mark.parametrize("if_match", ["*", 'W/"1"', "1"])
def test_if_match_forms_are_accepted(sqlite_api: Api, if_match: str) -> None:
    api = sqlite_api
    tenant_id = api.provision()["tenantId"]
    webhook_id = create(api, tenant_id)["webhookId"]
    response = api.request(
        "DELETE",
        f"/webhooks/{webhook_id}",
        headers={"If-Match": if_match},
        auth=admin(api, tenant_id),
    )
    assert response.status_code == 204, response.text


# -- the secret store --------------------------------------------------------------------------


class WatchedSecrets:
    """The real secret store, noting the log's head at each put, or failing like a store that
    is down."""

    def __init__(self, inner: WebhookSecrets, log: EventLog, fail: bool = False) -> None:
        self.inner, self.log, self.fail = inner, log, fail
        self.heads: list[int] = []

    def put(self, tenant_id: uuid.UUID, secret_id: uuid.UUID, secret: str) -> None:
        self.heads.append(self.log.head())
        if self.fail:
            raise OSError("the secret store is down")
        self.inner.put(tenant_id, secret_id, secret)

    def get(self, tenant_id: uuid.UUID, secret_ids: Any) -> dict[uuid.UUID, str]:
        return self.inner.get(tenant_id, secret_ids)


def commands_with(api: Api, secrets: WatchedSecrets) -> WebhookCommands:
    services = api.services
    return WebhookCommands(
        services.log,
        SystemClock(),
        RandomIds(),
        SystemEntropy(),
        secrets,
        services.get(WebhookTargets),
        services.get(WebhookReadModel),
    )


def test_a_secret_is_stored_before_the_event_that_names_it(api: Api) -> None:
    tenant_id = api.provision()["tenantId"]
    ctx = context("customer-admin", tenant=uuid.UUID(tenant_id))
    log = api.services.log
    secrets = WatchedSecrets(api.services.get(WebhookSecrets), log)
    commands = commands_with(api, secrets)

    head = log.head()
    created = commands.create(ctx, CreateWebhook(url=url(), events=["*"]))
    assert secrets.heads == [head]
    assert created.written.position > head

    head = log.head()
    rotated = commands.rotate_secret(ctx, created.written.id)
    assert secrets.heads[1:] == [head]
    assert rotated.written.position > head

    down = commands_with(api, WatchedSecrets(api.services.get(WebhookSecrets), log, fail=True))
    head = log.head()
    with pytest.raises(OSError, match="down"):
        down.create(ctx, CreateWebhook(url=url(), events=["*"]))
    with pytest.raises(OSError, match="down"):
        down.rotate_secret(ctx, created.written.id)
    assert log.head() == head  # no event names a secret that was never stored


def test_a_tenant_has_at_most_max_endpoints(private_webhook_api: Api) -> None:
    """One event goes to every matching endpoint: the count is capped, per tenant."""
    api = private_webhook_api
    tenant_id = api.provision()["tenantId"]
    auth = api.as_("customer-admin", tenant=tenant_id)
    body = {"url": "http://127.0.0.1:9/hook", "events": ["*"]}
    made = [api.request("POST", "/webhooks", json=body, auth=auth) for _ in range(MAX_ENDPOINTS)]
    assert {r.status_code for r in made} == {201}
    head = api.services.log.head()
    problem(api.request("POST", "/webhooks", json=body, auth=auth), 409, code="limit-reached")
    assert api.services.log.head() == head
    other = api.provision()["tenantId"]  # the cap is per tenant
    assert (
        api.request(
            "POST", "/webhooks", json=body, auth=api.as_("customer-admin", tenant=other)
        ).status_code
        == 201
    )
    deleted = made[0].json()["webhookId"]
    assert api.request("DELETE", f"/webhooks/{deleted}", auth=auth).status_code == 204
    assert api.request("POST", "/webhooks", json=body, auth=auth).status_code == 201
