"""Which addresses a webhook may reach (adapters/network.py): public unicast only, whatever
form the address is written in."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.network import WebhookTargetPolicy, is_public
from domain.errors import InvalidValue

PRIVATE_V4 = ["127.0.0.1", "10.0.0.5", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0"]
PRIVATE_V4 += ["100.64.0.1", "198.18.0.1", "192.0.2.1", "240.0.0.1", "224.0.0.1"]


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", [*PRIVATE_V4, "::1", "::", "fd00::1", "fe80::1", "ff02::1", "2001:db8::1"]
)
def test_private_loopback_link_local_and_reserved_addresses_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "template",
    [
        "::ffff:{}",  # IPv4-mapped
        "::{}",  # IPv4-compatible (deprecated, still routed by some stacks)
        "64:ff9b::{}",  # NAT64, well-known prefix: the gateway connects to the IPv4 address
    ],
)
@pytest.mark.parametrize("inner", PRIVATE_V4)
def test_an_ipv4_address_inside_an_ipv6_one_is_judged_as_itself(template: str, inner: str) -> None:
    """An IPv6-only network with NAT64 reaches 10.0.0.5 as 64:ff9b::a00:5; 6to4 and the
    deprecated IPv4-compatible form carry an IPv4 address too."""
    assert not is_public(ipaddress.ip_address(template.format(inner)))


@pytest.mark.parametrize("inner", PRIVATE_V4)
def test_a_6to4_address_is_judged_by_its_ipv4_address(inner: str) -> None:
    six_to_four = (0x2002 << 112) | (int(ipaddress.IPv4Address(inner)) << 80)
    assert not is_public(ipaddress.IPv6Address(six_to_four))
    assert is_public(
        ipaddress.IPv6Address((0x2002 << 112) | (int(ipaddress.IPv4Address("8.8.8.8")) << 80))
    )


@pytest.mark.parametrize("address", ["64:ff9b:1::a00:5", "fec0::1"])
def test_local_use_nat64_and_site_local_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@given(st.ip_addresses(v=4))
def test_embedding_never_changes_the_verdict(address: ipaddress.IPv4Address) -> None:
    verdict = is_public(address)
    for prefix in (0xFFFF << 32, 0x64FF9B << 96):  # mapped, NAT64
        assert is_public(ipaddress.IPv6Address(prefix | int(address))) == verdict


def test_the_policy_names_the_field_and_every_refused_address() -> None:
    policy = WebhookTargetPolicy(allow_private=False)
    with pytest.raises(InvalidValue) as refused:
        policy.check("url", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data")
    assert refused.value.field == "url"
    assert "64:ff9b::a9fe:a9fe" in str(refused.value)
    WebhookTargetPolicy(allow_private=True).check("url", "http://[64:ff9b::a9fe:a9fe]/")


def test_a_refusal_never_tells_what_a_name_resolves_to() -> None:
    """The internal network's DNS is not ours to map for a tenant: a name's addresses stay
    out of the message; a literal IP, the client's own input, is named."""
    policy = WebhookTargetPolicy(allow_private=False)
    with pytest.raises(InvalidValue) as by_name:
        policy.check_addresses("url", "db.internal", [ipaddress.ip_address("10.1.2.3")])
    assert "10.1.2.3" not in str(by_name.value)
    assert "db.internal" in str(by_name.value)
    with pytest.raises(InvalidValue) as by_ip:
        policy.check("url", "http://10.1.2.3/hook")
    assert "(10.1.2.3)" in str(by_ip.value)
