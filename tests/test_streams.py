"""Streams, run as a reader runs them: a producer appends, consumers read from an offset,
and --resume starts after the last message handled, even after a SIGKILL."""

import re
import signal
import textwrap
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pika
import pytest
from processes import ROOT, wait_until

from common.connection import RECONNECTED

STREAM = "events"
BODY = re.compile(r"^\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} - Streams - Hello World$")
LINE = re.compile(r"^(\d+) (.+)$")  # "<offset> <body>"


def offsets(consumer):
    """The offsets a consumer printed, and the bodies, in order."""
    found = [LINE.match(line) for line in consumer.received()]
    return [int(one[1]) for one in found], [one[2] for one in found]


def produce(start, n):
    producer = start("streams/producer.py", "-n", str(n))
    assert producer.wait(timeout=120) == 0, producer.describe()
    assert len(producer.sent()) == n and all(BODY.match(body) for body in producer.sent())
    return producer.sent()


def test_a_consumer_started_later_reads_everything_from_first(start):
    sent = produce(start, 5)
    early = start("streams/consumer.py", "--offset", "first")
    late = start("streams/consumer.py", "--offset", "first")
    for consumer in (early, late):  # each gets every message: reading takes nothing away
        consumer.wait_received(5)
        assert offsets(consumer) == ([0, 1, 2, 3, 4], sent)
    assert early.stop() == 0 and late.stop() == 0
    assert early.stderr == [] and late.stderr == []


def test_by_default_a_consumer_reads_only_what_comes_next(start):
    produce(start, 3)
    first, second = (start("streams/consumer.py").wait_ready() for _ in range(2))
    sent = produce(start, 2)
    for consumer in (first, second):
        consumer.wait_received(2)
        assert offsets(consumer) == ([3, 4], sent)
    assert first.stop() == 0 and second.stop() == 0
    assert offsets(first)[0] == [3, 4]  # nothing more came after them


@pytest.mark.parametrize(
    "where, expected",
    [
        ("3", [3, 4]),
        ("0", [0, 1, 2, 3, 4]),
        ("1h", [0, 1, 2, 3, 4]),  # an hour ago: before the stream began
        ((datetime.now() - timedelta(hours=1)).isoformat(timespec="minutes"), [0, 1, 2, 3, 4]),
    ],
    ids=["offset", "zero", "span", "iso-time"],
)
def test_a_consumer_starts_at_the_offset_or_time_it_is_given(start, where, expected):
    sent = produce(start, 5)
    consumer = start("streams/consumer.py", "--offset", where)
    consumer.wait_received(len(expected))
    assert offsets(consumer) == (expected, sent[expected[0] :])
    assert consumer.stop() == 0


def after_the_next_second():
    """The next whole second, once it has come (a wait on the clock, not on the broker)."""
    boundary = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep(max(0.0, (boundary - datetime.now(timezone.utc)).total_seconds()) + 0.05)
    return boundary


@pytest.mark.parametrize(
    "zone, shown",
    [("UTC", "%Y-%m-%dT%H:%M:%SZ"), ("Asia/Tokyo", "%Y-%m-%dT%H:%M:%S")],
    ids=["utc-z", "local-tokyo"],
)
def test_a_time_starts_at_what_was_appended_from_then_on(start, zone, shown):
    """A time with no zone is the consumer's local time; Z is UTC (Python 3.10 too)."""
    produce(start, 2)
    boundary = after_the_next_second()
    sent = produce(start, 2)
    when = boundary.astimezone(ZoneInfo(zone)).strftime(shown)
    consumer = start("streams/consumer.py", "--offset", when, env={"TZ": zone})
    consumer.wait_received(2)
    assert offsets(consumer) == ([2, 3], sent)
    assert consumer.stop() == 0


def test_resume_after_a_sigkill_leaves_no_gap(start, tmp_path):
    """At most the message handled but not yet stored comes again: one."""
    produce(start, 3000)
    options = ("--offset", "first", "--resume", "reader")
    first = start(ROOT / "streams/consumer.py", *options, cwd=tmp_path)
    first.wait_received(700)  # in the middle of the run
    first.process.send_signal(signal.SIGKILL)
    first.wait()
    stored = int((tmp_path / "reader.offset").read_text())
    seen, _ = offsets(first)
    assert seen == list(range(len(seen))) and stored < 2999
    assert stored <= seen[-1] <= stored + 1  # printed, maybe not yet stored: one at most
    again = start(ROOT / "streams/consumer.py", *options, cwd=tmp_path)
    wait_until(lambda: "2999" in {line.split()[0] for line in again.stdout}, "no 2999", again)
    assert again.stdout[0] == f" [*] Resuming after offset {stored} (kept in reader.offset)"
    assert offsets(again)[0] == list(range(stored + 1, 3000))  # no gap, none twice in it
    assert again.stop() == 0 and again.stderr == []
    assert (tmp_path / "reader.offset").read_text() == "2999\n"


def test_ctrl_c_in_the_middle_of_a_fast_read_is_clean(start):
    """Stopping with deliveries on their way: pika gives those back with a reject, which
    RabbitMQ 3.x answers by closing the connection. Still exit 0 and nothing on stderr."""
    produce(start, 3000)
    consumer = start("streams/consumer.py", "--offset", "first")
    consumer.wait_received(500)
    assert consumer.stop() == 0
    assert consumer.stderr == []


FAILING = """\
    class Failing(consumer.Consumer):
        def callback(self, offset, body):
            if offset == 3 and not FIXED:
                raise ValueError("cannot handle " + body.split()[0])
            super().callback(offset, body)

    FIXED = {fixed}
    consumer.Consumer = Failing
"""


def changed_consumer(start, tmp_path, name, change, *args, **options):
    """streams/consumer.py, run as a reader runs it (its run(), options and output), with
    change made first: its Consumer subclassed, or a function patched."""
    script = tmp_path / f"{name}.py"
    made = "from common.cli import run\nimport consumer\nimport stream\n\n"
    script.write_text(f"{made}{textwrap.dedent(change)}\nrun(consumer.main, consumer=True)\n")
    return start(script, *args, env={"PYTHONPATH": str(ROOT / "streams")}, **options)


def test_a_failing_callback_stops_with_an_error_that_names_the_offset(start, tmp_path):
    """No requeue on a stream: the consumer neither skips the message nor loops on it."""
    produce(start, 5)
    options = ("--offset", "first", "--resume", "reader")
    failing = changed_consumer(
        start, tmp_path, "failing", FAILING.format(fixed=False), *options, cwd=tmp_path
    )
    assert failing.wait() == 1, failing.describe()
    assert offsets(failing)[0] == [0, 1, 2]
    assert failing.stderr == [
        "error: the message at offset 3 failed (ValueError('cannot handle 3')), so the "
        "consumer stopped before it; once that is fixed, run again with --offset 3 or with "
        "the same --resume"
    ]
    assert (tmp_path / "reader.offset").read_text() == "2\n"
    fixed = changed_consumer(
        start, tmp_path, "fixed", FAILING.format(fixed=True), *options, cwd=tmp_path
    )
    fixed.wait_received(2)
    assert offsets(fixed)[0] == [3, 4]
    assert fixed.stop() == 0


@pytest.mark.parametrize(
    "args",
    [
        ("--offset", "bogus"),
        ("--offset", "-1"),
        ("--offset", "10 minutes"),
        ("--offset", "2026-13-01"),
        ("--resume", "../elsewhere"),
        ("--resume", ""),
        ("--offset", "999999d"),  # before the year 1
        ("--offset", "1960-01-01"),  # before 1970: no AMQP timestamp
    ],
)
def test_a_bad_offset_or_name_is_a_usage_error(start, args):
    consumer = start("streams/consumer.py", *args)
    assert consumer.wait() == 2
    assert consumer.stderr[-1].startswith("consumer.py: error: argument")


def test_a_stream_that_exists_with_other_retention_is_one_line(start, amqp_url):
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        other = {"x-queue-type": "stream", "x-max-age": "1D"}
        connection.channel().queue_declare(STREAM, durable=True, arguments=other)
    for script in ("streams/producer.py", "streams/consumer.py"):
        run = start(script)
        assert run.wait() == 1
        [line] = run.stderr
        assert line.startswith("error: the broker refused: PRECONDITION_FAILED - inequivalent")
        assert "delete it with `rabbitmqctl delete_queue" in line  # -p: the test's vhost
        assert line.endswith(f" {STREAM}` and run again)")


def test_a_queue_of_another_type_with_the_name_is_one_line(start, amqp_url):
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        quorum = {"x-queue-type": "quorum"}
        connection.channel().queue_declare(STREAM, durable=True, arguments=quorum)
    run = start("streams/consumer.py")
    assert run.wait() == 1
    [line] = run.stderr
    assert line.startswith("error: the broker refused: PRECONDITION_FAILED - inequivalent")
    assert "QUEUE_TYPE" not in line  # which does not make a stream of it
    assert line.endswith(f" {STREAM}` and run again)")


NO_PREFETCH = """\
    class Unlimited(consumer.Consumer):
        def __init__(self, *args, **options):
            super().__init__(*args, **options)
            self.prefetch = 0  # no limit: a stream refuses it

    consumer.Consumer = Unlimited
"""


def test_a_consumer_with_no_prefetch_is_refused_in_one_line(start, tmp_path):
    run = changed_consumer(start, tmp_path, "unlimited", NO_PREFETCH)
    assert run.wait() == 1, run.describe()
    [line] = run.stderr
    assert line.startswith("error: the broker refused: PRECONDITION_FAILED - consumer prefetch")


def test_a_consumer_that_lost_the_broker_goes_on_after_the_last_it_handled(start, restartable):
    """Subscribed again from the last offset handled, not from --offset: no message twice,
    none missing, though it started at first."""
    sent = produce(start, 3)
    consumer = start("streams/consumer.py", "--offset", "first")
    consumer.wait_received(3)
    restartable.ctl("close_all_connections", "--global", "closed by a test")
    consumer.wait_for_line(RECONNECTED)
    sent += produce(start, 2)
    consumer.wait_received(5)
    assert consumer.stop() == 0
    assert offsets(consumer) == ([0, 1, 2, 3, 4], sent)


def test_an_offset_file_that_holds_no_offset_is_one_line(start, tmp_path):
    (tmp_path / "reader.offset").write_text("garbage\n")
    consumer = start(ROOT / "streams/consumer.py", "--resume", "reader", cwd=tmp_path)
    assert consumer.wait() == 1
    assert consumer.stderr == [
        "error: reader.offset holds 'garbage', not an offset: delete it to start at --offset"
    ]


UNWRITABLE = """\
    def full(*args):
        raise OSError(28, "No space left on device")

    stream.os.replace = full  # as a full disk would refuse the new file
"""


def test_an_offset_that_cannot_be_kept_stops_the_consumer_in_one_line(start, tmp_path):
    produce(start, 2)
    options = ("--offset", "first", "--resume", "reader")
    consumer = changed_consumer(start, tmp_path, "unwritable", UNWRITABLE, *options, cwd=tmp_path)
    assert consumer.wait() == 1, consumer.describe()
    assert offsets(consumer)[0] == [0]  # handled, then not kept: it stops there
    assert consumer.stderr == [
        "error: cannot keep offset 0 in reader.offset: [Errno 28] No space left on device"
    ]


def test_a_stream_deleted_while_read_stops_the_consumer_in_one_line(start, amqp_url):
    """Subscribing again after the last offset would skip the new stream's first ones."""
    produce(start, 2)
    consumer = start("streams/consumer.py", "--offset", "first")
    consumer.wait_received(2)
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        connection.channel().queue_delete(STREAM)
    assert consumer.wait() == 1, consumer.describe()
    assert consumer.stderr == [
        f"error: the broker ended the subscription to the stream {STREAM!r}: was it deleted? "
        "A new one's offsets start again at 0: run with --offset first"
    ]


SLOW = """\
    import threading

    class Slow(consumer.Consumer):
        first_channel = None
        again = threading.Event()  # offset 1 delivered again, on the new connection

        def on_message(self, channel, method, properties, body):
            self.first_channel = self.first_channel or channel
            if channel is not self.first_channel:
                self.again.set()
            super().on_message(channel, method, properties, body)

        def callback(self, offset, body):
            if offset == 1 and not self.again.is_set():
                print("working on 1")
                self.again.wait(30)  # the test closes the connection meanwhile
            super().callback(offset, body)

    consumer.Consumer = Slow
"""


def test_the_message_in_hand_when_the_broker_went_away_is_not_handled_twice(
    start, restartable, tmp_path
):
    """Subscribed again after the last offset handled, while the worker still holds the
    next: the broker sends that one again, and it is not handled again."""
    sent = produce(start, 3)
    consumer = changed_consumer(start, tmp_path, "slow", SLOW, "--offset", "first")
    consumer.wait_for_line("working on 1")
    restartable.ctl("close_all_connections", "--global", "closed by a test")
    consumer.wait_received(3)
    assert consumer.stop() == 0
    assert offsets(consumer) == ([0, 1, 2], sent)
    assert RECONNECTED in consumer.stdout
