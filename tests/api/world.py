"""A tenant ready for delivery work: a customer, a person and the tokens of its roles."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

TERMS = {
    "scope": "Build the onboarding portal",
    "pricing": {"model": "fixed-price", "amount": 50000.10, "currency": "USD"},
    "timeline": {"startDate": "2026-01-01", "endDate": "2026-06-30"},
}


class Tenancy:
    """A tenant with a customer, a person and the tokens of its roles."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.tenant = api.provision()["tenantId"]
        self.admin = api.as_("customer-admin", tenant=self.tenant)
        self.pm = api.as_("project-manager", tenant=self.tenant)
        created = api.request("POST", "/customers", json={"name": "Globex"}, auth=self.admin)
        assert created.status_code == 201, created.text
        self.customer = created.json()["customerId"]
        self.person = api.hire(self.tenant)["personId"]

    def engagement(self, **overrides: Any) -> dict[str, Any]:
        body = {"customerId": self.customer, "contractTerms": TERMS, **overrides}
        response = self.api.request("POST", "/engagements", json=body, auth=self.pm)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def squad(self, capacity: float = 40) -> str:
        body = {"name": "Alpha", "capacityHoursPerWeek": capacity, "memberIds": [self.person]}
        response = self.api.request("POST", "/squads", json=body, auth=self.pm)
        assert response.status_code == 201, response.text
        return str(response.json()["squadId"])

    def post(self, path: str, body: Any = None, auth: dict[str, str] | None = None) -> Any:
        return self.api.request("POST", path, json=body, auth=auth or self.pm)
