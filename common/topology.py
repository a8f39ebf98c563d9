"""Queue and Exchange: what a pattern declares, to send to it and receive from it.

Both sides declare what they use, so either may start first. Every choice is
the safe one, because readers copy it: durable quorum queues (see Connection),
persistent messages and publisher confirms (Publisher), manual acks after the
work, a prefetch limit and poison messages set aside (Consumer).
"""

from common.consuming import Consumer
from common.publishing import PERSISTENT_TEXT, Publisher


class Queue(Publisher, Consumer):
    """One named queue: send() to it, receive() from it.

    queue=None declares no queue (a client that only publishes, or only asks);
    queue="" a server-named exclusive queue; any other name a durable queue of
    queue_type (see Connection). url may list several brokers: see connect().
    """

    def __init__(self, url: str, queue: str | None, **options):
        self.queue_name = queue
        super().__init__(url, **options)

    def declare(self) -> None:
        if self.queue_name is not None:
            self.queue = self.declare_queue(self.queue_name)

    def send(self, body: str, routing_key=None, exchange="", properties=PERSISTENT_TEXT) -> bool:
        """Publish body to the queue (or with routing_key) and wait for its confirm."""
        key = self.queue if routing_key is None else routing_key
        return super().send(body, key or "", exchange, properties)


class Exchange(Publisher, Consumer):
    """An exchange of exchange_type ("fanout", "direct", "topic") to send() to, and
    optionally a queue to bind() to it and receive() from."""

    def __init__(self, url: str, exchange: str, exchange_type: str, queue=None, **options):
        self.exchange, self.exchange_type, self.queue_name = exchange, exchange_type, queue
        self.routing_keys: list[str] = []
        super().__init__(url, **options)

    def declare(self) -> None:
        self.channel.exchange_declare(self.exchange, self.exchange_type, durable=True)
        if self.queue_name is not None:
            self.queue = self.declare_queue(self.queue_name)
        for routing_key in self.routing_keys:  # after a reconnection: a new queue to bind
            self.channel.queue_bind(self.queue, self.exchange, routing_key)

    def bind(self, *routing_keys: str) -> None:
        """Bind the queue to the exchange once per routing key (none: one binding, key "")."""
        for routing_key in routing_keys or ("",):
            self.channel.queue_bind(self.queue, self.exchange, routing_key)
            self.routing_keys.append(routing_key)

    def send(self, body: str, routing_key: str = "") -> bool:  # type: ignore[override]
        return super().send(body, routing_key, exchange=self.exchange)
