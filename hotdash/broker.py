"""Kombu's Redis transport, with one fix: a worker survives losing Redis while it holds
unacknowledged tasks (selected by CELERY_BROKER_TRANSPORT when REDIS_URL is set).

When the broker connection breaks, the Celery consumer first ``collect()``s the connection,
which detaches the transport from it (``transport.client = None``), and then closes it. Closing
the task channel tries to put its unacknowledged messages back on their queue; the channel's
pool was just dropped, so it builds a new one from ``self.connection.client`` — now None — and
raises ``AttributeError: 'NoneType' object has no attribute 'hostname'``. That is not one of
the transport's connection errors, so it escapes the consumer's error handling and the worker
exits ("Unrecoverable error"). A task that finishes later and acks on that channel fails the
same way. (kombu 5.7.0 / celery 5.7.0, the newest releases; no upstream fix yet.)

Here a detached channel raises a connection error instead, which kombu and Celery already
handle: the restore or ack is logged and skipped, and the worker reconnects. Nothing is lost
by skipping it: the message stays in Redis's unacked set (restored after the visibility
timeout) or, if Redis lost its data, the deploy's lease expires and the reconciler resends it.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
