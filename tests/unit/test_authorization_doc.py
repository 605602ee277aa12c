"""docs/authorization.md is the role table of application/authorization.py, rendered.

Regenerate it with: .venv/bin/python -m tests.unit.test_authorization_doc > docs/authorization.md
"""

from __future__ import annotations

from pathlib import Path

from application.authorization import ALL_PERMISSIONS, ROLE_PERMISSIONS, permissions_for

DOC = Path(__file__).parents[2] / "docs" / "authorization.md"


def render() -> str:
    roles = list(ROLE_PERMISSIONS)
    lines = [
        "# Roles and permissions",
        "",
        "Generated from `application/authorization.py` (the one table the code uses);",
        "a test checks that this file matches it. Platform roles act across tenants; tenant",
        "roles act inside the tenant named by their token's `tid` claim. API-key scopes use",
        "the same permission names.",
        "",
        "| permission | " + " | ".join(roles) + " |",
        "| --- | " + " | ".join("---" for _ in roles) + " |",
    ]
    for perm in sorted(ALL_PERMISSIONS):
        marks = " | ".join("yes" if perm in ROLE_PERMISSIONS[r] else "" for r in roles)
        lines.append(f"| `{perm}` | {marks} |")
    lines += [
        "",
        "Notes",
        "- `tenant:manage` (suspend, reactivate, close) and `tenant:create` are platform-only.",
        "- partner-admin reaches only the tenants it provisioned; any other tenant is a 404.",
        "- A suspended or closed tenant's own users get 403 on every write.",
    ]
    return "\n".join(lines) + "\n"


def test_the_documented_role_table_is_the_one_in_code() -> None:
    assert DOC.read_text() == render(), __doc__


def test_api_md_role_rules_hold() -> None:
    admin = permissions_for(["customer-admin"])
    assert {"person:write", "audit:read", "invoice:issue", "apikey:manage"} <= admin
    auditor = permissions_for(["auditor"])
    assert "audit:read" in auditor
    assert not any(p.endswith((":write", ":issue", ":manage", ":import")) for p in auditor)
    assert {"invoice:issue", "payment:write"} <= permissions_for(["finance"])
    assert "work:write" in permissions_for(["member"]) & permissions_for(["squad-lead"])
    assert "person:write" not in permissions_for(["member"])
    assert permissions_for(["unknown-role"]) == frozenset()


if __name__ == "__main__":
    print(render(), end="")
