"""Which network addresses outbound webhooks may reach (server-side request forgery guard).

A webhook URL is the tenant's to choose, so without this check a tenant could make the server
call its own private network (cloud metadata at 169.254.169.254, databases on 10.x, the admin
port on 127.0.0.1). The check runs when an endpoint is saved and again when a message is sent,
on the address actually connected to, since DNS can change in between (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from domain.errors import InvalidValue

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms that carry an IPv4 address which the host or a gateway connects to: NAT64 (on an
# IPv6-only network 64:ff9b::a00:5 reaches 10.0.0.5) and the deprecated IPv4-compatible ::/96.
# Python calls both global, whatever IPv4 address they carry.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
# Not global, though Python 3.11 says they are: NAT64 for local use (RFC 8215) and the
# deprecated site-local range, still found on private networks.
_NOT_GLOBAL = (ipaddress.IPv6Network("64:ff9b:1::/48"), ipaddress.IPv6Network("fec0::/10"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses only; an IPv6 address that carries an
    IPv4 one (mapped, NAT64, 6to4, IPv4-compatible) is judged by the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public(embedded)
        if any(address in network for network in _NOT_GLOBAL):
            return False
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal IP resolves to itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in found:
            found.append(address)
    return found


class WebhookTargetPolicy:
    """Implements application.ports.WebhookTargets."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def check(self, field: str, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError):
            raise InvalidValue(field, f"the host {host!r} does not resolve") from None
        self.check_addresses(field, host, addresses)

    def check_addresses(self, field: str, host: str, addresses: list[IPAddress]) -> None:
        if not addresses:
            raise InvalidValue(field, f"the host {host!r} does not resolve")
        if self.allow_private:
            return
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise InvalidValue(
                field, f"the host {refusal(repr(host), refused)}; such targets are refused"
            )


def refusal(host: str, refused: list[IPAddress]) -> str:
    """Why a target is refused. The addresses a NAME resolves to are not told: a tenant must
    not be able to map the internal network's DNS through our error messages. A literal IP is
    the client's own input and is named."""
    text = f"{host} resolves to a private, loopback or link-local address"
    try:
        ipaddress.ip_address(host.strip("'[]"))
    except ValueError:
        return text
    return f"{text} ({', '.join(str(a) for a in refused)})"
