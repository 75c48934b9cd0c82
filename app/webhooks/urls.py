"""Where a subscription may point (api-contract.md, Webhooks): ``https`` only, and never at a
loopback, private or link-local address, so that the service cannot be made to call into its
own network (server-side request forgery). Checked when subscribing and again at every
delivery, because a name can be pointed elsewhere after it was checked (DNS rebinding).

In sandbox mode ``http`` and loopback are allowed too, so harnesses can run a receiver
locally; private and link-local addresses stay refused there as well.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.core.problems import FieldError, ValidationProblem


class UnsafeUrl(Exception):
    """The URL, or an address its host resolves to, is not one the service will call."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int


def parse_target(url: str, *, sandbox: bool) -> Target:
    """The URL's scheme, host and port, or ``UnsafeUrl`` when its form is not allowed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrl("not a URL") from error
    allowed = {"https", "http"} if sandbox else {"https"}
    if parts.scheme not in allowed or not parts.hostname:
        raise UnsafeUrl("scheme or host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("credentials in the URL")  # a secret would sit in logs and lists
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80))


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address: not loopback, private, link-local,
    shared (CGNAT), multicast, reserved or unspecified, IPv4 inside IPv6 included."""
    ip = _ip(address)
    return ip.is_global and not ip.is_multicast


def is_allowed_address(address: str, *, sandbox: bool) -> bool:
    return is_public_address(address) or (sandbox and _ip(address).is_loopback)


async def resolve_allowed(target: Target, *, sandbox: bool) -> list[str]:
    """Every address the host resolves to, all of them allowed, or ``UnsafeUrl``."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError, ValueError) as error:
        raise UnsafeUrl("does not resolve") from error
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses or not all(is_allowed_address(a, sandbox=sandbox) for a in addresses):
        raise UnsafeUrl("not an allowed address")
    return addresses


URL_RULE = "The URL must be https and resolve only to public addresses."


async def check_subscription_url(url: str, *, sandbox: bool) -> None:
    """422 ``validation-error`` for a URL the service will not call (the URL is not echoed)."""
    try:
        await resolve_allowed(parse_target(url, sandbox=sandbox), sandbox=sandbox)
    except UnsafeUrl as error:
        raise ValidationProblem(URL_RULE, errors=[FieldError(field="url", message=URL_RULE)]) from (
            error
        )
