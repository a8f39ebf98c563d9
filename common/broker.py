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
- a prefetch limit per consumer, so no consumer hoards messages;
- the callback runs on a thread of its own, so a long task does not stop the
  heartbeats that keep the connection alive;
- a message whose callback fails is tried MAX_ATTEMPTS times, then set aside
  in the DEAD_LETTERS queue instead of being redelivered forever;
- a consumer that loses the broker reconnects, with backoff, for up to
  retry_for seconds; a producer whose message is not confirmed (the
  connection lost, or a nack) sends it again, for up to RESEND_FOR seconds;
- a URL may list several brokers, the nodes of a cluster: the first that
  answers is used.
"""

import copy
import functools
import os
import queue
import re
import signal
import socket
import ssl
import sys
import threading
import time
from urllib.parse import unquote, urlsplit

import pika
from pika.adapters.utils.connection_workflow import AMQPConnectorException
from pika.exceptions import AMQPConnectionError, NackError, UnroutableError

PERSISTENT_TEXT = pika.BasicProperties(
    content_type="text/plain", delivery_mode=pika.DeliveryMode.Persistent
)
QUEUE_TYPES = ("classic", "quorum")
MAX_ATTEMPTS = 3
DEAD_LETTERS = "dead_letters"
RESEND_FOR = 30  # seconds send() keeps publishing a message the broker has not confirmed
BLOCKED_TIMEOUT = 30  # seconds; ?blocked_connection_timeout=N in the URL says otherwise


class BrokerError(Exception):
    """A problem outside the program (no broker, refused login): one line for the user."""


class Refused(BrokerError):
    """The broker refused the login or the virtual host: trying again will not help."""


def without_password(url):
    """The URL as it is safe to print: user, host, port and virtual host, no password.
    Several URLs separated by commas: each so."""
    urls = broker_urls(url)
    if len(urls) > 1:
        return ", ".join(map(without_password, urls))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:  # beyond repair: show none of it
        return "(the URL)"
    if "@" in parts.path + parts.query + parts.fragment:  # a password in the wrong place
        return "(the URL)"
    userinfo, at, host_and_port = parts.netloc.rpartition("@")
    user = unquote(userinfo.split(":", 1)[0])
    return f"{parts.scheme}://{user}{at}{host_and_port}{parts.path}"


def connect_parameters(url):
    """pika's parameters for url, with the defaults that the helpers add."""
    parameters = pika.URLParameters(url)
    if parameters.blocked_connection_timeout is None:
        # A broker short of memory or disk blocks publishers: give up then, not hang.
        parameters.blocked_connection_timeout = BLOCKED_TIMEOUT
    return parameters


def broker_urls(url):
    """The URLs in url: one, or several separated by commas (the nodes of a cluster).
    Only a comma before amqp:// or amqps:// separates: one in a password does not."""
    parts = re.split(r",\s*(?=amqps?://)", url, flags=re.IGNORECASE)
    urls = [part.strip().rstrip(",") for part in parts]
    return [one for one in urls if one]


def connect(url, retry_for=0.0):
    """Open a connection to the broker at url, or raise BrokerError saying what to check.

    url may list several brokers, the nodes of one cluster, separated by commas:
    the first that answers is used. While none answers, try them all again, in
    order, with growing pauses for up to retry_for seconds. A refused login or
    virtual host is final at once (the nodes of a cluster share their users), and
    so, for its URL only, is a failed TLS handshake or a host name that cannot be.
    """
    urls = broker_urls(url)
    if not urls:
        raise BrokerError("no broker URL given")
    reasons = {}  # url -> why it failed, the last time it was tried
    deadline, pause = time.monotonic() + retry_for, 0.5
    while True:
        for one in urls:
            try:
                return pika.BlockingConnection(connect_parameters(one))
            except LOGIN_REFUSED as error:
                raise Refused(f"cannot connect to {failures({one: reason(error, one)})}") from None
            except (ssl.SSLError, UnicodeError) as error:  # before OSError: SSLError is one
                reasons[one] = reason(error, one)
                urls = [other for other in urls if other != one]  # no use trying it again
            except (AMQPConnectionError, OSError, AMQPConnectorException) as error:
                reasons[one] = reason(error, one)  # this one does not answer: the next may
        left = deadline - time.monotonic()
        if not urls or left <= 0:
            raise BrokerError(f"cannot connect to {failures(reasons)}")
        if pause == 0.5:
            where = ", ".join(map(without_password, urls))
            print(f" [!] No broker answers at {where} yet: trying for {retry_for:g} s")
        time.sleep(min(pause, left))
        pause = min(pause * 2, 5.0)


LOGIN_REFUSED = (
    pika.exceptions.ProbableAuthenticationError,
    pika.exceptions.ProbableAccessDeniedError,
)


def failures(reasons):
    """url -> reason, in words: the reason once if every URL failed alike."""
    if len(set(reasons.values())) == 1:
        return f"{', '.join(map(without_password, reasons))}: {next(iter(reasons.values()))}"
    return "; ".join(f"{without_password(url)}: {why}" for url, why in reasons.items())


def reason(error, url):
    """What a failed connection to url means, and what to check, in words."""
    if isinstance(error, pika.exceptions.ProbableAuthenticationError):
        return "the broker refused the user name or password: check them in the URL"
    if isinstance(error, pika.exceptions.ProbableAccessDeniedError):
        vhost = pika.URLParameters(url).virtual_host
        return f"the virtual host {vhost!r} does not exist, or the user may not use it"
    if isinstance(error, pika.exceptions.ConnectionClosedByBroker):
        return f"the broker closed the connection: {error.reply_text}"
    if isinstance(error, ssl.SSLError):
        if error.reason == "CERTIFICATE_VERIFY_FAILED":
            return (
                f"TLS failed ({error.reason}): if your own CA signed the broker's "
                "certificate, name its certificate with SSL_CERT_FILE=ca.pem"
            )
        return f"TLS failed ({error.reason}): is that port the broker's TLS port (5671)?"
    if isinstance(error, UnicodeError):
        return "the host name is not valid"
    if isinstance(error, socket.gaierror):
        return f"the host name does not resolve ({error.strerror})"
    if "Timeout" in repr(error):  # pika's stack or socket time-out
        return "something answers there, but not an AMQP broker (it timed out)"
    return "no broker answers there: is RabbitMQ running, and are host and port right?"


class Queue:
    """One connection, one channel, one queue: send() to it, receive() from it.

    queue=None declares no queue (a producer that only publishes to an
    exchange); queue="" a server-named exclusive queue; any other name a
    durable queue of queue_type "classic" or "quorum" (replicated on the nodes
    of a cluster). queue_type defaults to the QUEUE_TYPE environment variable,
    else "classic": so `QUEUE_TYPE=quorum python workers/consumer.py` runs a
    pattern on quorum queues unchanged.

    url is one broker's URL, or several separated by commas: see connect().
    """

    ready = " [*] Waiting for messages. To exit press CTRL+C"  # printed once consuming

    def __init__(self, url, queue, *, prefetch=10, queue_type=None, retry_for=0.0):
        self.url = url
        self.queue_name = queue
        self.queue_type = queue_type or os.environ.get("QUEUE_TYPE") or "classic"
        if self.queue_type not in QUEUE_TYPES:
            raise BrokerError(
                f"queue type {self.queue_type!r} (from QUEUE_TYPE, or queue_type=): "
                "expected classic or quorum"
            )
        self.prefetch = prefetch
        self.retry_for = retry_for
        self.stopping = threading.Event()  # set by stop(), or by SIGINT/SIGTERM in receive()
        self.open()

    def open(self):
        """Connect, and declare what this side needs: again after a lost connection."""
        self.connection = connect(self.url, self.retry_for)
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        if self.queue_name is None:
            self.queue = None
        else:
            self.queue = self.declare_queue(self.queue_name, self.queue_type)

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
        """Publish body and wait for the broker's confirm; False if no queue took it.

        Until its confirm comes, the message is not sent: if the connection is
        lost first, connect again (to another node of a cluster, given several
        URLs) and publish it again; if the broker refuses it (a nack: a quorum
        queue does so while it elects a new leader), publish it again, on a fresh
        connection, after a pause. So a message may arrive twice, but it is never
        lost. After RESEND_FOR seconds of this, BrokerError. The wait for one
        confirm has no limit: a quorum queue that has lost its majority holds the
        message, neither confirmed nor refused, until the majority is back (and
        may hold the close of a refused channel for a minute).
        """
        routing_key = self.queue if routing_key is None else routing_key
        deadline, pause, lost = None, 0.1, False
        while True:
            try:
                if not self.connection.is_open:  # lost, or closed after a nack
                    self.open()
                    if lost:
                        print(" [*] Reconnected to the broker")
                        lost = False
                self.channel.basic_publish(
                    exchange, routing_key, body.encode(), properties, mandatory=True
                )
                return True
            except UnroutableError:
                print(
                    f"warning: unroutable: no queue is bound to exchange "
                    f"{exchange or '(default)'!r} for routing key {routing_key!r}, "
                    f"so the broker dropped: {body}",
                    file=sys.stderr,
                )
                return False
            except NackError:
                problem = "the broker refused it (nack)"
            except (pika.exceptions.ConnectionBlockedTimeout, Refused):
                raise  # short of memory or disk, or a login refused: trying again will not help
            except (pika.exceptions.AMQPError, BrokerError) as error:
                if self.connection.is_open:  # not a lost connection: for the caller to see
                    raise
                problem = str(error) if isinstance(error, BrokerError) else "the broker is gone"
                if not lost:
                    print(f" [!] Lost the broker: trying again for up to {RESEND_FOR:g} s")
                lost = True
            deadline = deadline or time.monotonic() + RESEND_FOR  # from the first failure
            if time.monotonic() > deadline:
                raise BrokerError(f"a message was not sent in {RESEND_FOR:g} s: {problem}")
            if self.connection.is_open:  # still open: refused, not lost
                print(" [!] The broker refused a message (nack): sending it again")
                self.close()  # a channel refused once may go on refusing: start afresh
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def receive(self):
        """Consume until SIGINT or SIGTERM (or stop()), calling callback() per message.

        A lost connection is opened again (see open()), and consuming goes on.
        """
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            # The signal only raises a flag: an exception raised in the middle of
            # pika reading a frame would leave the connection unusable, even to close.
            for stop in (signal.SIGINT, signal.SIGTERM):
                handlers[stop] = signal.signal(stop, lambda signum, frame: self.stopping.set())
        self.tasks = queue.SimpleQueue()  # from the I/O thread (here) to the worker thread
        threading.Thread(target=self.work, daemon=True).start()
        try:
            self.consume()
        finally:
            for stop, handler in handlers.items():
                signal.signal(stop, handler)

    def consume(self):
        """Deliver messages to on_message() until stopped; reconnect when the broker is lost."""
        while True:
            try:
                self.channel.basic_qos(prefetch_count=self.prefetch)  # never global
                self.channel.basic_consume(self.queue, self.on_message)
                if self.ready:
                    print(self.ready)
                    self.ready = ""  # once: a reconnection says so itself
                while not self.stopping.is_set():
                    self.connection.process_data_events(time_limit=0.2)
                return  # close() gives back what is unacked
            except AMQPConnectionError:
                while not self.tasks.empty():  # unacked: the broker redelivers them
                    self.tasks.get_nowait()
                self.open()
                print(" [*] Reconnected to the broker")

    def stop(self):
        """Stop receive() soon, from any thread; what is not acked goes back to the queue."""
        self.stopping.set()

    def on_message(self, channel, method, properties, body):
        self.tasks.put((self.connection, channel, method, properties, body))

    def work(self):
        """The worker thread: runs callback() per message, in order, off the I/O thread."""
        while True:
            connection, channel, method, properties, body = self.tasks.get()
            if self.stopping.is_set():
                continue  # stopped: leave it unacked, for the broker to deliver again
            try:
                # errors="replace": a body that is not UTF-8 is shown, not a crash.
                self.callback(body.decode("utf-8", errors="replace"))
                done = functools.partial(self.ack, channel, method.delivery_tag)
            except BrokenPipeError:  # whoever read our output is gone (`consumer.py | head`)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                self.stop()  # not the message's fault: it stays unacked
                continue
            except Exception as error:  # whatever the callback raised: retry, then set aside
                done = functools.partial(self.failed, channel, method, properties, body, error)
            try:
                # pika is not thread-safe: the I/O thread sends the ack.
                connection.add_callback_threadsafe(done)
            except pika.exceptions.AMQPError:
                pass  # the connection is gone: the broker redelivers the message

    def ack(self, channel, delivery_tag):
        if channel.is_open:  # else it was lost, and the broker redelivers the message
            channel.basic_ack(delivery_tag)  # only now: the work is done

    def failed(self, channel, method, properties, body, error):
        """The callback raised: publish the message again, or to DEAD_LETTERS, then ack it."""
        if not channel.is_open:
            return
        attempts = (properties.headers or {}).get("attempts", 0) + 1
        headers = {**(properties.headers or {}), "attempts": attempts}
        if attempts < MAX_ATTEMPTS:
            target, fate = self.queue, "it goes back to the queue"
        else:
            target, fate = DEAD_LETTERS, f"it goes to the queue {DEAD_LETTERS!r}"
            headers.update(error=repr(error)[:500], queue=self.queue)
            self.declare_queue(DEAD_LETTERS, self.queue_type)
        print(
            f"warning: failed ({error!r}), attempt {attempts} of {MAX_ATTEMPTS}: {fate}",
            file=sys.stderr,
        )
        again = copy.copy(properties)  # the same message: its id, type, reply_to and the rest
        again.headers, again.delivery_mode = headers, pika.DeliveryMode.Persistent.value
        channel.basic_publish("", target, body, again)
        channel.basic_ack(method.delivery_tag)

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
        self.exchange = exchange
        self.exchange_type = exchange_type
        self.routing_keys = []
        super().__init__(url, queue, **options)

    def open(self):
        super().open()
        # Producer and consumer both declare it, so either may start first.
        self.channel.exchange_declare(self.exchange, self.exchange_type, durable=True)
        for routing_key in self.routing_keys:  # after a reconnection: a new queue to bind
            self.channel.queue_bind(self.queue, self.exchange, routing_key)

    def bind(self, *routing_keys):
        """Bind the queue to the exchange once per routing key (none: one binding, key "")."""
        for routing_key in routing_keys or ("",):
            self.channel.queue_bind(self.queue, self.exchange, routing_key)
            self.routing_keys.append(routing_key)

    def send(self, body, routing_key=""):
        return super().send(body, routing_key, exchange=self.exchange)
