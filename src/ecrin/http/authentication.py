"""HTTP Basic authentication (passwords and app passwords)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from functools import lru_cache

from starlette.requests import Request

from ecrin.core.errors import Unauthorized
from ecrin.core.model import User
from ecrin.services.accounts import AccountService

CHALLENGE = 'Basic realm="Ecrin", charset="UTF-8"'


def basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise Unauthorized("malformed Basic credentials") from exc
    login, sep, password = decoded.partition(":")
    if not sep:
        raise Unauthorized("malformed Basic credentials")
    return login, password


def client_network(request: Request) -> str:
    """Where a request comes from, for throttling: the IPv4 address, or the IPv6 /64 (one
    subscriber usually holds a whole /64). Behind a trusted proxy, uvicorn has already put
    the forwarded client address here."""
    return _network_of(request.client.host if request.client else "")


@lru_cache(maxsize=4096)
def _network_of(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


async def authenticate(request: Request, accounts: AccountService) -> User:
    credentials = basic_credentials(request)
    if credentials is None:
        raise Unauthorized("authentication required")
    user = await accounts.authenticate(*credentials, client_network(request))
    if user is None:
        raise Unauthorized("wrong user name or password")
    return user
