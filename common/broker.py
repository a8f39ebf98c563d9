"""Queue and Exchange: a connection, a channel, and the reliable defaults.

Every choice here is the safe one, because readers copy it:

- named queues are durable, so they outlive a broker restart; a queue with
  no name is server-named and exclusive, so it goes away with its consumer;
- messages are persistent, so a durable queue keeps them on disk;
- publisher confirms: ``send()`` returns only once the broker has taken the
  message, and ``mandatory`` makes a message that no queue takes come back as
  unroutable instead of vanishing;
- manual acks, sent after the callback has done its work, so a consumer that
  dies mid-message gives the message back to the queue;
- a prefetch limit per consumer, so no consumer hoards messages.
"""

import sys
from urllib.parse import unquote, urlsplit

import pika
from pika.exceptions import AMQPConnectionError, UnroutableError

PERSISTENT_TEXT = pika.BasicProperties(
    content_type="text/plain", delivery_mode=pika.DeliveryMode.Persistent
)


class BrokerError(Exception):
    """A problem outside the program (no broker, refused login): one line for the user."""


def without_password(url):
    """The URL as it is safe to print: user, host, port and virtual host, no password."""
    try:
        parts = urlsplit(url)
    except ValueError:  # beyond repair: show none of it
        return "(the URL)"
    userinfo, at, host_and_port = parts.netloc.rpartition("@")
    user = unquote(userinfo.split(":", 1)[0])
    return f"{parts.scheme}://{user}{at}{host_and_port}{parts.path}"


def connect(url):
    """Open a connection to the broker at url, or raise BrokerError saying what to check."""
    parameters = pika.URLParameters(url)
    try:
        return pika.BlockingConnection(parameters)
    except pika.exceptions.ProbableAuthenticationError:
        reason = "the broker refused the user name or password: check them in the URL"
    except pika.exceptions.ProbableAccessDeniedError:
        reason = (
            f"the virtual host {parameters.virtual_host!r} does not exist, "
            "or the user may not use it"
        )
    except pika.exceptions.ConnectionClosedByBroker as error:
        reason = f"the broker closed the connection: {error.reply_text}"
    except AMQPConnectionError:
        reason = "no broker answers there: is RabbitMQ running, and are host and port right?"
    raise BrokerError(f"cannot connect to {without_password(url)}: {reason}")


class Queue:
    """One connection, one channel, one queue: send() to it, receive() from it.

    queue=None declares no queue (a producer that only publishes to an
    exchange); queue="" a server-named exclusive queue; any other name a
    durable queue of queue_type "classic" or "quorum".
    """

    ready = " [*] Waiting for messages. To exit press CTRL+C"  # printed once consuming

    def __init__(self, url, queue, *, prefetch=10, queue_type="classic"):
        self.connection = connect(url)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self.prefetch = prefetch
        self.queue = None if queue is None else self.declare_queue(queue, queue_type)

    def declare_queue(self, name, queue_type="classic"):
        """Declare the queue and return its name (the broker's choice when name is "")."""
        if name == "":
            result = self.channel.queue_declare("", exclusive=True)
        else:
            # Only quorum is spelled out: a classic queue declared elsewhere
            # without the argument would otherwise not be "equivalent".
            arguments = None if queue_type == "classic" else {"x-queue-type": queue_type}
            result = self.channel.queue_declare(name, durable=True, arguments=arguments)
        return result.method.queue

    def send(self, body, routing_key=None, exchange="", properties=PERSISTENT_TEXT):
        """Publish body and wait for the broker's confirm; False if no queue took it."""
        routing_key = self.queue if routing_key is None else routing_key
        try:
            self.channel.basic_publish(
                exchange, routing_key, body.encode(), properties, mandatory=True
            )
        except UnroutableError:
            print(
                f"warning: unroutable: no queue is bound to exchange {exchange or '(default)'!r} "
                f"for routing key {routing_key!r}, so the broker dropped: {body}",
                file=sys.stderr,
            )
            return False
        return True

    def receive(self):
        """Consume from the queue until SIGINT or SIGTERM, calling callback() per message."""
        try:
            self.channel.basic_qos(prefetch_count=self.prefetch)  # per consumer, never global
            self.channel.basic_consume(self.queue, self.on_message)
            print(self.ready)
            self.channel.start_consuming()
        except KeyboardInterrupt:
            pass  # the stop the user asked for; close() gives back what is unacked

    def on_message(self, channel, method, properties, body):
        # errors="replace": a body that is not UTF-8 is shown, not a crash.
        self.callback(body.decode("utf-8", errors="replace"))
        channel.basic_ack(method.delivery_tag)  # only now: the work is done

    def callback(self, body):
        """What to do with one message: each consumer says."""
        raise NotImplementedError

    def close(self):
        if self.connection.is_open:
            self.connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class Exchange(Queue):
    """An exchange of exchange_type ("fanout", "direct", "topic"), and optionally a queue.

    send() publishes to the exchange; bind() binds the queue to it.
    """

    def __init__(self, url, exchange, exchange_type, queue=None, **options):
        super().__init__(url, queue, **options)
        # Producer and consumer both declare it, so either may start first.
        self.channel.exchange_declare(exchange, exchange_type, durable=True)
        self.exchange = exchange
        self.exchange_type = exchange_type

    def bind(self, *routing_keys):
        """Bind the queue to the exchange once per routing key (none: one binding, key "")."""
        for routing_key in routing_keys or ("",):
            self.channel.queue_bind(self.queue, self.exchange, routing_key)

    def send(self, body, routing_key=""):
        return super().send(body, routing_key, exchange=self.exchange)
