"""The basic queue, run as a reader runs it: producer and consumer in their own processes."""

import re
import signal
import time

import pytest
from processes import ROOT, TIMEOUT

BODY = re.compile(r"^(\d+) \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} - Basic - Hello World$")


def numbers(bodies):
    return [int(BODY.match(body).group(1)) for body in bodies]


def test_every_message_is_received_once_and_in_order(start):
    consumer = start("basic/consumer.py").wait_ready()
    producer = start("basic/producer.py")
    assert producer.wait() == 0, producer.describe()
    assert numbers(producer.sent()) == [0, 1, 2, 3, 4]
    assert consumer.wait_received(5) == producer.sent()
    assert consumer.stop() == 0
    assert consumer.received() == producer.sent()  # nothing more arrived after the five
    assert consumer.stderr == []


def test_messages_sent_before_any_consumer_wait_in_the_queue(start):
    producer = start("basic/producer.py", "-n", "3")
    assert producer.wait() == 0, producer.describe()
    consumer = start("basic/consumer.py")
    assert consumer.wait_received(3) == producer.sent()
    assert numbers(consumer.received()) == [0, 1, 2]


def test_scripts_run_from_inside_their_folder(start):
    producer = start("producer.py", "-n", "2", cwd=ROOT / "basic")
    assert producer.wait() == 0, producer.describe()
    consumer = start("consumer.py", cwd=ROOT / "basic")
    assert consumer.wait_received(2) == producer.sent()


def test_url_option_wins_over_the_environment(start, amqp_url):
    nowhere = "amqp://guest:guest@127.0.0.1:1/%2F"
    producer = start("basic/producer.py", "-n", "1", "--url", amqp_url, url=nowhere)
    assert producer.wait() == 0, producer.describe()
    assert len(producer.sent()) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_consumer_stops_cleanly_on_a_signal(start, sig):
    consumer = start("basic/consumer.py").wait_ready()
    assert consumer.stop(sig) == 0
    assert consumer.stderr == []


def test_consumer_writing_to_a_file_shows_each_line_at_once(start, tmp_path):
    output = tmp_path / "received.txt"
    with output.open("w") as sink:
        consumer = start("basic/consumer.py", stdout=sink)
        producer = start("basic/producer.py", "-n", "1")
        assert producer.wait() == 0, producer.describe()
        expected = f"{producer.sent()[0]} received\n"
        deadline = time.monotonic() + TIMEOUT
        while expected not in output.read_text():  # the consumer is still running
            assert consumer.process.poll() is None and time.monotonic() < deadline, (
                output.read_text()
            )
            time.sleep(0.05)  # a poll interval, bounded by the deadline above
        assert consumer.stop() == 0
