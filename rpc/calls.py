"""RpcClient and RpcServer: a request, and the reply that belongs to it.

The client labels each request with a new correlation id and says where to
reply (reply_to). The server does the work and sends the answer to reply_to,
with the request's correlation id, so that a client with many calls under way
knows which answer belongs to which call, and drops any reply it does not
know (a late answer to a call it gave up on, say).

A reply whose AMQP ``type`` property is "error" carries an error message
instead of a result: the client raises it as RpcError.
"""

import functools
import logging
import time
import uuid

import pika

from common.connection import BrokerError, Connection
from common.publishing import whole
from common.topology import Queue

log = logging.getLogger("rpc.calls")  # so named however it is imported

# Direct reply-to: the broker hands replies straight to the client's channel,
# so no reply queue has to be declared, and cleaned up, for every client.
REPLY_TO = "amq.rabbitmq.reply-to"
AWAITING = " [x] Awaiting RPC requests"  # an RPC server, once consuming


class RpcError(Exception):
    """The server could not answer this request; the message says why."""


class RpcTimeout(BrokerError):
    """No reply came in time."""


class NoServer(BrokerError):
    """No queue takes the requests: no server has declared it."""


class RpcClient(Connection):
    """Sends requests to the server's queue and waits, without spinning, for their replies.

    It declares no queue: the server owns its queue, and the replies need none. The
    requests go out without waiting for a confirm each, all at once: the reply is
    the confirmation, and a request lost on the way ends in RpcTimeout. Mandatory
    all the same, so that a request no queue takes comes back at once: NoServer.
    A connection lost during the wait ends the call with pika's AMQPConnectionError
    (its replies went with it); the next call connects again.
    """

    def __init__(self, url: str, queue: str, *, timeout: float = 5.0):
        self.server_queue, self.timeout = queue, timeout
        self.replies: dict = {}  # correlation id -> reply, per call under way (None: not yet)
        super().__init__(url)

    confirms = False  # see above

    def declare(self) -> None:
        self.channel.add_on_return_callback(self.on_return)
        self.returned = False
        # Direct reply-to: the requests go out on the channel that consumes the replies.
        self.channel.basic_consume(REPLY_TO, self.on_reply, auto_ack=True)  # no-ack: required

    def request(self, body: str) -> str:
        """One reply: the result as text; RpcError if the server refused the request."""
        [reply] = self.request_many([body])
        if isinstance(reply, RpcError):
            raise reply
        return reply

    def request_many(self, bodies: list[str]) -> list:
        """Send every request at once, then wait for all replies; in the order asked.

        A refused request's place holds its RpcError. NoServer at once if no queue
        takes the requests; RpcTimeout if the replies do not all come within timeout.
        """
        try:
            if self.connection.is_open:  # else pika fails on its timer, not with a lost broker
                self.connection.process_data_events(time_limit=0)  # lost since the last?
            lost = not self.channel.is_open  # closed by the broker (a message too large, say)
        except pika.exceptions.AMQPConnectionError:
            lost = True
        if lost:
            self.close()
            self.open()
        ids = [str(uuid.uuid4()) for _ in bodies]
        self.replies.update(dict.fromkeys(ids))
        self.returned = False
        try:
            for body, correlation_id in zip(bodies, ids, strict=True):
                properties = pika.BasicProperties(
                    content_type="text/plain",
                    reply_to=REPLY_TO,
                    correlation_id=correlation_id,
                    expiration=str(int(self.timeout * 1000)),  # nobody waits for it after that
                )
                with whole():
                    self.channel.basic_publish(
                        "", self.server_queue, body.encode(), properties, mandatory=True
                    )
            self.wait_for(ids)
            return [self.replies[i] for i in ids]
        finally:
            for i in ids:
                del self.replies[i]  # a reply that comes later is a stray: dropped

    def wait_for(self, ids: list[str]) -> None:
        deadline = time.monotonic() + self.timeout
        while any(self.replies[i] is None for i in ids):
            if self.returned:
                raise NoServer(
                    f"no server is consuming {self.server_queue!r} (no such queue): start the "
                    "server first (python rpc/consumer.py), then ask again"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RpcTimeout(
                    f"no reply within {self.timeout:g} s: the server is not running, or too busy"
                )
            # Sleeps in select() until a reply or the deadline: no busy loop.
            self.connection.process_data_events(time_limit=remaining)

    def on_return(self, channel, method, properties, body) -> None:
        if properties.correlation_id in self.replies:  # of a call under way, not a late one
            self.returned = True  # no queue took it: none will, while this one is missing

    def on_reply(self, channel, method, properties, body) -> None:
        if self.replies.get(properties.correlation_id, "unknown") is not None:
            return  # not a call under way, or answered already: a stray, ignored
        text = body.decode("utf-8", errors="replace")
        self.replies[properties.correlation_id] = (
            RpcError(text) if properties.type == "error" else text
        )


class RpcServer(Queue):
    """Consumes requests and replies to each; respond() says what the answer is. It runs
    on the worker thread, like every callback, so a long answer stops no heartbeat."""

    ready = AWAITING
    # A reply is not confirmed: one lost ends in the client's time-out, and waiting for
    # each confirm would hold up every request behind it.
    confirms = False

    def respond(self, body: bytes) -> str:
        """The reply to one request as text; raise ValueError to refuse it."""
        raise NotImplementedError

    def handle(self, channel, method, properties, body):
        try:
            reply, kind = self.respond(body).encode(), "result"
        except ValueError as error:  # a request we cannot answer: tell the client, keep serving
            reply, kind = str(error).encode(), "error"
        except BrokenPipeError:
            raise
        except Exception as error:  # a bug of ours: the client hears of it, and so do we
            log.warning(f"respond() failed ({error!r}): the client gets an error reply")
            reply, kind = f"the server failed: {error!r}".encode(), "error"
        return functools.partial(self.answer, channel, method, properties, reply, kind)

    @staticmethod
    def answer(channel, method, properties, reply, kind) -> None:
        if properties.reply_to:
            answer = pika.BasicProperties(
                content_type="text/plain", correlation_id=properties.correlation_id, type=kind
            )
            # No mandatory flag: before 4.2, RabbitMQ returns every reply to a direct
            # reply-to address as unroutable, delivered or not.
            channel.basic_publish("", properties.reply_to, reply, answer)
        channel.basic_ack(method.delivery_tag)  # answered (or unanswerable): done with it
