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


def is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses only."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
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
        refused = [str(a) for a in addresses if not is_public(a)]
        if refused:
            raise InvalidValue(
                field,
                f"the host {host!r} resolves to a private, loopback or link-local address"
                f" ({', '.join(refused)}); such targets are refused",
            )
