"""publish_many(): many messages, every one confirmed, without waiting for each confirm.

Queue.send() waits for the broker's confirm of each message before the next:
simple and safe, but about a tenth as fast as not confirming (see the README,
"What the safety costs"). publish_many() keeps up to `window` messages
unconfirmed at once on a non-blocking connection, and returns only when the
broker has confirmed them all: as safe, and as fast as not confirming.
"""

import collections

import pika

from common.broker import (
    LOGIN_REFUSED,
    PERSISTENT_TEXT,
    BrokerError,
    broker_urls,
    connect_parameters,
    failures,
    reason,
)

CLOSE_GRACE = 5.0  # seconds to wait for the broker to close the connection, after a time-out


def publish_many(url, routing_key, bodies, *, exchange="", window=1000, batch=False, timeout=60.0):
    """Publish every body (str) with confirms, `window` at most unconfirmed at a time.

    Streamed (the default), each confirm lets another message go; batch=True
    sends `window` messages and waits for all their confirms before the next
    batch, the other strategy of RabbitMQ's publisher-confirms guide.

    url may name several brokers, separated by commas (the nodes of a cluster): the
    first that answers is used, and timeout counts for each one tried.

    Returns how many the broker confirmed: all of them. Raises BrokerError if the
    broker refused (nacked) or could not route any of them, or if the confirms
    did not all come within timeout seconds.
    """
    bodies = [body.encode() for body in bodies]
    state = {"sent": 0, "acked": 0, "nacked": 0, "returned": 0, "error": None, "closing": False}
    unconfirmed = collections.deque()  # delivery tags, in the order published

    def publish(channel):
        while not state["closing"] and state["sent"] < len(bodies) and len(unconfirmed) < window:
            channel.basic_publish(
                exchange, routing_key, bodies[state["sent"]], PERSISTENT_TEXT, mandatory=True
            )
            state["sent"] += 1
            unconfirmed.append(state["sent"])  # in confirm mode tags count from 1

    def on_confirm(frame):
        method = frame.method
        if method.multiple:  # one confirm for every tag up to this one
            done = 0
            while unconfirmed and unconfirmed[0] <= method.delivery_tag:
                unconfirmed.popleft()
                done += 1
        else:
            unconfirmed.remove(method.delivery_tag)
            done = 1
        state["acked" if isinstance(method, pika.spec.Basic.Ack) else "nacked"] += done
        if state["acked"] + state["nacked"] == len(bodies):
            close()
        elif not batch or not unconfirmed:
            publish(channel)

    def on_channel(opened):
        nonlocal channel
        channel = opened
        channel.add_on_return_callback(
            lambda *returned: state.update(returned=state["returned"] + 1)
        )
        channel.add_on_close_callback(on_channel_closed)
        channel.confirm_delivery(on_confirm, callback=lambda frame: publish(channel))

    def on_channel_closed(closed, reason):
        if not state["closing"]:  # not our own close(): the broker's doing
            state["error"] = f"the broker closed the channel: {reason}"
            close()

    def give_up():
        if state["acked"] + state["nacked"] < len(bodies):  # else only the close is late
            state["error"] = f"not every confirm came within {timeout:g} s"
        if not connection.is_open:  # still opening: nothing sent, nothing to close
            connection.ioloop.stop()
            return
        close()
        # The broker may not answer the close for a minute either (a quorum queue without
        # its majority holds the channel): stop waiting. pika has no public way to drop
        # the socket at once; it closes when the connection is garbage-collected.
        connection.ioloop.call_later(CLOSE_GRACE, connection.ioloop.stop)

    def close():
        state["closing"] = True
        if connection.is_open:
            connection.close()

    def on_failed(failed, error):
        nonlocal refused  # the nodes of a cluster share their users: no use trying another
        refused = isinstance(error, LOGIN_REFUSED)
        unreachable[one] = reason(error, one)  # one: the URL being tried, as connect() says it
        failed.ioloop.stop()

    channel, refused, unreachable = None, False, {}
    if not bodies:
        return 0
    for one in broker_urls(url):  # several: the nodes of a cluster, the first that answers
        state["error"] = None  # a time-out while the last one was opening is not this one's
        connection = pika.SelectConnection(
            connect_parameters(one),
            on_open_callback=lambda opened: opened.channel(on_open_callback=on_channel),
            on_open_error_callback=on_failed,
            on_close_callback=lambda closed, reason: closed.ioloop.stop(),
        )
        timer = connection.ioloop.call_later(timeout, give_up)
        try:
            connection.ioloop.start()
        finally:
            connection.ioloop.remove_timeout(timer)
            connection.ioloop.close()
        if channel is not None or refused:  # it answered (done, well or not), or said no
            break
    if channel is None and unreachable:
        raise BrokerError(f"cannot connect to {failures(unreachable)}")
    if state["error"]:
        raise BrokerError(state["error"])
    if state["nacked"] or state["returned"]:
        problems = []
        if state["nacked"]:
            problems.append(f"the broker refused {state['nacked']} (nack)")
        if state["returned"]:
            problems.append(f"no queue took {state['returned']} (routing key {routing_key!r})")
        raise BrokerError(f"of {len(bodies)} messages, {' and '.join(problems)}")
    return state["acked"]
