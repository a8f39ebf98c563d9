"""Queue.send(): a message counts as sent once the broker confirms it. Until then it is
sent again, after a lost connection or a refusal (a nack), for RESEND_FOR seconds; a
login refused on the way is an error at once."""

import time
import urllib.parse

import pika
import pytest
from inprocess import TIMEOUT, Call, get_all

from common import BrokerError, Queue
from common.connection import RECONNECTED, Refused

LOST = " [!] Lost the broker: trying again for up to 30 s"
NACKED = " [!] The broker refused a message (nack): sending it again"


def bodies(url, queue):
    return [body for _, body in get_all(url, queue)]


def close_connections(broker, url):
    """Close every connection to the test's virtual host, as a broker restart would."""
    broker.ctl("close_all_connections", "-p", pika.URLParameters(url).virtual_host, "by a test")


def test_send_after_a_lost_connection_reconnects_and_loses_nothing(
    broker, amqp_url, queue_type, logged
):
    with Queue(amqp_url, "resent") as producer:
        assert producer.send("before") is True
        close_connections(broker, amqp_url)
        assert producer.send("after") is True
    assert logged.lines == [LOST, RECONNECTED]
    assert bodies(amqp_url, "resent") == [b"before", b"after"]


def test_a_refused_message_is_sent_again_until_the_broker_takes_it(amqp_url, full_queue, logged):
    with Queue(amqp_url, None) as producer:
        sending = Call(producer.send, "second", full_queue)
        logged.wait_for(NACKED)  # not sent, and the producer says so
        taken = bodies(amqp_url, full_queue)  # room again (the resend may land meanwhile)
        assert b"filler" in taken
        assert sending.result(TIMEOUT) is True
    left = bodies(amqp_url, full_queue)
    assert b"filler" not in left and [b for b in taken + left if b != b"filler"] == [b"second"]


def test_a_message_refused_for_longer_than_resend_for_is_an_error(
    amqp_url, full_queue, monkeypatch, logged
):
    monkeypatch.setattr("common.publishing.RESEND_FOR", 1)
    with Queue(amqp_url, None) as producer:
        began = time.monotonic()
        with pytest.raises(BrokerError, match=r"not sent in 1 s: the broker refused it \(nack\)"):
            Call(producer.send, "second", full_queue).result()
        assert time.monotonic() - began < 1 + 5  # the last pause is 2 s at the most
    assert NACKED in logged.lines
    assert set(bodies(amqp_url, full_queue)) == {b"filler"}


def test_a_login_refused_while_reconnecting_is_an_error_at_once(broker, amqp_url, monkeypatch):
    monkeypatch.setattr("common.publishing.RESEND_FOR", 10)
    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    with Queue(amqp_url, "kept") as producer:
        assert producer.send("before") is True
        broker.api("DELETE", f"/api/permissions/{vhost}/{urllib.parse.quote(broker.user)}")
        close_connections(broker, amqp_url)
        began = time.monotonic()
        with pytest.raises(Refused, match="does not exist, or the user may not use it"):
            Call(producer.send, "after").result()
        assert time.monotonic() - began < 5  # not sent again for RESEND_FOR (10 s)
