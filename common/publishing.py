"""Publishing: a message counts as sent once the broker has confirmed it."""

import contextlib
import logging
import signal
import threading
import time

import pika
from pika.exceptions import NackError, UnroutableError

from common.connection import RECONNECTED, BrokerError, Connection, Refused

log = logging.getLogger(__name__)

PERSISTENT_TEXT = pika.BasicProperties(
    content_type="text/plain", delivery_mode=pika.DeliveryMode.Persistent
)
RESEND_FOR = 30  # seconds send() keeps publishing a message the broker has not confirmed


@contextlib.contextmanager
def whole():
    """Ctrl-C and SIGTERM wait until the block is done, then do what they would have done
    (run()'s handlers: KeyboardInterrupt). A publish cut between its frames makes the
    broker close the connection with an error (UNEXPECTED_FRAME) when the close that
    follows comes after half a message. With confirms the block lasts until the broker
    answers: a second signal does not wait for a broker that may not. Only the main
    thread gets signals: elsewhere this does nothing."""
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {stop: signal.getsignal(stop) for stop in stops}
    if threading.current_thread() is not threading.main_thread() or None in previous.values():
        yield  # not ours to defer (None: a handler set outside Python)
        return
    caught: list[int] = []

    def restore():
        for stop, handler in previous.items():
            signal.signal(stop, handler)

    def later(signum, frame):
        if caught:  # the second: now, as the handlers we replaced would have it
            caught.clear()
            restore()
            signal.raise_signal(signum)
        else:
            caught.append(signum)

    for stop in stops:
        signal.signal(stop, later)
    try:
        yield
    finally:
        restore()
        if caught:
            signal.raise_signal(caught[0])


class Publisher(Connection):
    """Publishes with confirms and the mandatory flag: send() returns once the broker has
    taken the message, and a message that no queue takes comes back instead of vanishing."""

    def send(
        self,
        body: str,
        routing_key: str,
        exchange: str = "",
        properties: pika.BasicProperties = PERSISTENT_TEXT,
    ) -> bool:
        """Publish body and wait for its confirm; False, with a warning, if no queue took it."""
        try:
            self.publish(body, routing_key, exchange, properties)
            return True
        except UnroutableError:
            where = f"exchange {exchange or '(default)'!r} for routing key {routing_key!r}"
            log.warning(f"unroutable: no queue is bound to {where}, so the broker dropped: {body}")
            return False

    def publish(self, body, routing_key, exchange="", properties=PERSISTENT_TEXT) -> None:
        """Publish body and wait for its confirm; UnroutableError if no queue took it.

        Until its confirm comes, the message is not sent: if the connection is lost
        first, connect again (to another node of a cluster, given several URLs) and
        publish it again; if the broker refuses it (a nack: a quorum queue does so
        while it elects a new leader, or when full with x-overflow reject-publish),
        publish it again, on a fresh connection, after a pause. So a message may
        arrive twice, but it is never lost. After RESEND_FOR seconds of this,
        BrokerError. The wait for one confirm has no limit: a quorum queue that has
        lost its majority holds the message, neither confirmed nor refused, until
        the majority is back.
        """
        deadline, pause, lost = None, 0.1, False
        while True:
            try:
                if not self.connection.is_open:  # lost, or closed after a nack
                    self.open()
                    if lost:
                        log.info(RECONNECTED)
                        lost = False
                with whole():
                    self.channel.basic_publish(
                        exchange, routing_key, body.encode(), properties, mandatory=True
                    )
                return
            except NackError:
                problem = "the broker refused it (nack)"
            except (pika.exceptions.ConnectionBlockedTimeout, Refused):
                raise  # short of memory or disk, or a login refused: trying again will not help
            except (pika.exceptions.AMQPError, BrokerError) as error:
                if self.connection.is_open:  # not a lost connection: for the caller to see
                    raise
                problem = str(error) if isinstance(error, BrokerError) else "the broker is gone"
                if not lost:
                    log.info(f" [!] Lost the broker: trying again for up to {RESEND_FOR:g} s")
                lost = True
            deadline = deadline or time.monotonic() + RESEND_FOR  # from the first failure
            if time.monotonic() > deadline:
                raise BrokerError(f"a message was not sent in {RESEND_FOR:g} s: {problem}")
            if self.connection.is_open:  # still open: refused, not lost
                log.info(" [!] The broker refused a message (nack): sending it again")
                self.close()  # a channel refused once may go on refusing: start afresh
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
