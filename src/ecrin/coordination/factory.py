"""Build the coordination back-end from settings."""

from __future__ import annotations

from ecrin.coordination.local import InProcessCoordination
from ecrin.coordination.protocol import Coordination
from ecrin.coordination.sqlite import FILE_NAME, SQLiteCoordination
from ecrin.core.errors import BadRequest
from ecrin.settings import Settings


def coordination_for(settings: Settings) -> Coordination:
    """How the processes of this instance coordinate.

    `redis_url` set: through that Redis/Valkey server (several hosts). Otherwise, with several
    workers (`ecrin serve --workers N`, one host): through `coordination.sqlite3` in the data
    folder. One worker: inside the process, the fastest.
    """
    if settings.redis_url:
        return coordination_from_url(settings.redis_url, key_prefix=settings.redis_key_prefix)
    if settings.workers > 1:
        return SQLiteCoordination(settings.data_dir / FILE_NAME)
    return InProcessCoordination()


def coordination_from_url(url: str, *, key_prefix: str = "ecrin:") -> Coordination:
    """Empty: inside this process only; `redis://…`: shared through a Redis/Valkey server."""
    if not url:
        return InProcessCoordination()
    try:
        from ecrin.coordination.redis import RedisCoordination
    except ImportError as exc:  # the optional dependency is missing
        raise BadRequest("redis_url needs the redis extra: pip install 'ecrin[redis]'") from exc
    return RedisCoordination(url, key_prefix=key_prefix)
