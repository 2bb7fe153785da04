"""Build the coordination back-end from settings."""

from __future__ import annotations

from ecrin.coordination.local import InProcessCoordination
from ecrin.coordination.protocol import Coordination
from ecrin.core.errors import BadRequest


def coordination_from_url(url: str, *, key_prefix: str = "ecrin:") -> Coordination:
    """Empty: inside this process only; `redis://…`: shared through a Redis/Valkey server."""
    if not url:
        return InProcessCoordination()
    try:
        from ecrin.coordination.redis import RedisCoordination
    except ImportError as exc:  # the optional dependency is missing
        raise BadRequest("redis_url needs the redis extra: pip install 'ecrin[redis]'") from exc
    return RedisCoordination(url, key_prefix=key_prefix)
