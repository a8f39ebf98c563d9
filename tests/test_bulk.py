"""publish_many() (confirms/bulk.py) in the test's own process, as tools/bench.py and a
reader's code use it: every strategy, returns, several brokers, refusals, errors."""

import socket
import time

import pytest
from broker import free_port
from inprocess import Call, DeafToClose, get_all, ready_messages
from processes import TIMEOUT

from common import BrokerError, Queue
from confirms.bulk import publish_many


@pytest.mark.parametrize(("window", "batch"), [(1, False), (100, True), (1000, False)])
def test_publish_many_confirms_every_message_in_each_strategy(amqp_url, window, batch):
    with Queue(amqp_url, "volume"):  # declares the queue
        pass
    bodies = [f"{i} bulk" for i in range(2500)]
    confirmed = []
    done = publish_many(
        amqp_url, "volume", bodies, window=window, batch=batch, on_confirmed=confirmed.append
    )
    assert (done.confirmed, done.nacked, done.returned, done.resent) == (2500, 0, 0, 0)
    assert sorted(confirmed) == list(range(2500))
    taken = get_all(amqp_url, "volume")
    assert [body for _, body in taken] == [body.encode() for body in bodies]  # in order
    assert {properties.delivery_mode for properties, _ in taken} == {2}


def test_publish_many_counts_what_no_queue_took(amqp_url):
    """The broker confirms a message it returned (it has dealt with it), but no queue has
    it: returned, not confirmed, and not handed to on_confirmed."""
    shown = []
    done = publish_many(amqp_url, "nobody-binds-this", ["a", "b", "c"], on_confirmed=shown.append)
    assert (done.confirmed, done.returned, shown) == (0, 3, [])


def test_publish_many_uses_the_first_of_several_brokers_that_answers(amqp_url):
    with Queue(amqp_url, "volume"):  # declares the queue
        pass
    nobody = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    assert publish_many(f"{nobody},{amqp_url}", "volume", ["a", "b"]).confirmed == 2
    assert ready_messages(amqp_url, "volume") == 2


def test_publish_many_to_a_port_that_never_answers_gives_up_in_time():
    with socket.socket() as silent:  # accepts connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}/%2F"
        began = time.monotonic()
        with pytest.raises(BrokerError, match="no answer within 1 s"):
            publish_many(url, "volume", ["a"], timeout=1)
        assert time.monotonic() - began < 8  # the time-out, and the 5 s grace at most


def test_publish_many_with_no_broker_is_a_broker_error():
    url = f"amqp://guest:secret@127.0.0.1:{free_port()}/%2F"
    with pytest.raises(BrokerError, match="cannot connect") as error:
        publish_many(url, "volume", ["a"])
    assert "secret" not in str(error.value)


def test_publish_many_sends_a_refused_message_again_until_its_timeout(amqp_url, full_queue):
    """A full queue refuses (nacks) every message: publish_many() sends them again, and
    gives up once nothing has been confirmed for its timeout, saying how many."""
    with pytest.raises(BrokerError, match=r"no confirm in 2 s: 3 not confirmed, \d+ refused"):
        publish_many(amqp_url, full_queue, ["a", "b", "c"], timeout=2)
    assert {body for _, body in get_all(amqp_url, full_queue)} == {b"filler"}


def test_publish_many_sends_a_refused_message_again_until_the_broker_takes_it(
    amqp_url, full_queue, logged
):
    sending = Call(lambda: publish_many(amqp_url, full_queue, ["again"], timeout=TIMEOUT))
    logged.wait_for(" [!] The broker refused messages (nack): sending them again")
    taken = [body for _, body in get_all(amqp_url, full_queue)]  # room again: it lands
    done = sending.result(TIMEOUT)
    assert done.confirmed == 1 and done.nacked >= 1
    everything = taken + [body for _, body in get_all(amqp_url, full_queue)]
    assert [body for body in everything if body != b"filler"] == [b"again"]


def test_an_error_in_on_confirmed_reaches_the_caller_and_nothing_is_sent_again(amqp_url):
    """pika takes an exception raised in its callbacks for a lost connection: publish_many()
    must not, or a `producer.py | head` would reconnect and publish everything again."""
    with Queue(amqp_url, "volume"):
        pass

    def broken(index):
        raise BrokenPipeError("the reader of our output is gone")

    with pytest.raises(BrokenPipeError):
        publish_many(amqp_url, "volume", [f"{i}" for i in range(50)], on_confirmed=broken)
    assert ready_messages(amqp_url, "volume") <= 50  # each sent once at most


def test_a_refusal_then_a_broker_deaf_to_the_close_holds_up_nothing(
    amqp_url, full_queue, logged, monkeypatch
):
    """After a nack publish_many() closes its connection; a broker that never answers that
    close is dropped after CLOSE_GRACE, and the message goes out again on a new one."""
    monkeypatch.setattr("confirms.bulk.CLOSE_GRACE", 0.5)  # not the 5 s it waits in earnest
    with DeafToClose(amqp_url) as proxy:
        sending = Call(lambda: publish_many(proxy.url, full_queue, ["again"], timeout=TIMEOUT))
        logged.wait_for(" [!] The broker refused messages (nack): sending them again")
        assert proxy.deaf.is_set()
        taken = [body for _, body in get_all(amqp_url, full_queue)]  # room again: it lands
        done = sending.result()
    assert done.confirmed == 1 and proxy.connections >= 2
    everything = taken + [body for _, body in get_all(amqp_url, full_queue)]
    assert [body for body in everything if body != b"filler"] == [b"again"]
