"""Choosing a broker from its URL.

``broker_from_url`` imports the Redis and RabbitMQ adapters only when asked for them, so a
server on the in-process broker does not pay for loading their client libraries (~0.5 s).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import structlog

from ferrous.application.ports import Broker
from ferrous.domain.errors import ConfigInvalid
from ferrous.infrastructure.broker.delivery import redact
from ferrous.infrastructure.broker.memory import InMemoryBroker

log = structlog.get_logger(__name__)

SCHEMES = ("memory", "redis", "rediss", "amqp", "amqps")


def broker_from_url(url: str) -> Broker:
    """The broker for ``memory://``, ``redis[s]://...`` or ``amqp[s]://...``; nothing connects yet.

    Raises ConfigInvalid for any other URL.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return InMemoryBroker()
    if scheme in ("redis", "rediss"):
        from ferrous.infrastructure.broker.redis import RedisBroker  # noqa: PLC0415 (see above)

        return RedisBroker(url)
    if scheme in ("amqp", "amqps"):
        from ferrous.infrastructure.broker.rabbitmq import (  # noqa: PLC0415 (see above)
            RabbitMQBroker,
        )

        return RabbitMQBroker(url)
    raise ConfigInvalid(
        f"unsupported broker URL {redact(url)!r}: use memory://, redis://host:6379/0, "
        "rediss://..., amqp://user:password@host:5672/ or amqps://..."
    )
