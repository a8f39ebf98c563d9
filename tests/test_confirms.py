"""Publisher confirms: each strategy confirms every message, the consumer counts them by
sequence number, and a broker restart in the middle of a run loses nothing."""

import re
import socket
import time

import pytest
from broker import free_port
from inprocess import Call, bare, get_all, ready_messages
from processes import TIMEOUT

from common import BrokerError, Queue
from common.connection import RECONNECTED
from confirms.bulk import publish_many

STRATEGIES = ["each", "batch", "async"]
SUMMARY = re.compile(
    r"(each|batch|async): (\d+) confirmed in [\d.]+ s \([\d,]+ msg/s\); (\d+) nacked, "
    r"(\d+) returned, (\d+) sent again"
)
# Enough messages that a restart lands in the middle of the run, at each strategy's pace.
RESTARTED_RUN = {"each": 25_000, "batch": 200_000, "async": 200_000}


def summaries(script):
    """(strategy, confirmed, nacked, returned, sent again) for each summary line."""
    return [
        (m[1], *map(int, m.groups()[1:]))
        for line in script.stdout
        if (m := SUMMARY.fullmatch(line))
    ]


def counted(strategy, n, received, missing="none missing", twice=0):
    return f"{strategy} of {n}: {received} received: {missing}, {twice} twice"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_has_every_message_confirmed_and_received_once(start, strategy):
    consumer = start("confirms/consumer.py").wait_ready()
    producer = start("confirms/producer.py", "--strategy", strategy, "-n", "300")
    assert producer.wait(60) == 0, producer.describe()
    assert summaries(producer) == [(strategy, 300, 0, 0, 0)], producer.describe()
    assert len(producer.stdout) == 1  # more than SHOWN: no line per message
    consumer.wait_for_line(counted(strategy, 300, 300))


def test_all_runs_the_three_strategies_in_turn(start):
    producer = start("confirms/producer.py", "--strategy", "all", "-n", "50", "--batch", "10")
    assert producer.wait(60) == 0, producer.describe()
    assert summaries(producer) == [(strategy, 50, 0, 0, 0) for strategy in STRATEGIES]


def test_a_small_run_shows_each_message_sent_and_received(start):
    consumer = start("confirms/consumer.py").wait_ready()
    producer = start("confirms/producer.py", "--strategy", "batch", "-n", "3", "--batch", "2")
    assert producer.wait() == 0, producer.describe()
    assert [body.split(" - ")[-1] for body in producer.sent()] == ["batch of 3"] * 3
    assert [body.split(" ")[0] for body in producer.sent()] == ["0", "1", "2"]
    consumer.wait_for_line(counted("batch", 3, 3))
    assert consumer.received() == producer.sent()


@pytest.mark.parametrize(("n", "lines"), [(20, 20), (21, 0)])
def test_a_line_per_message_up_to_20(start, n, lines):
    producer = start("confirms/producer.py", "-n", str(n))
    assert producer.wait() == 0, producer.describe()
    assert len(producer.sent()) == lines


BAD_INPUT = [
    ["--strategy", "sometimes"],
    ["-n", "0"],
    ["-n", "-5"],
    ["--strategy", "batch", "-n", "10", "--batch", "11"],  # a batch larger than the run
]


@pytest.mark.parametrize("args", BAD_INPUT)
def test_bad_input_is_one_usage_line(start, args):
    producer = start("confirms/producer.py", *args)
    assert producer.wait() == 2
    assert producer.stdout == [] and producer.stderr[-1].startswith("producer.py: error: ")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_broker_restart_in_the_middle_of_a_run_loses_nothing(
    start, restartable, amqp_url, strategy, report
):
    """The producer knows what the broker confirmed before it went away; what it did not
    confirm, the producer sends again once the broker is back. The consumer, started
    after, finds none missing; what was sent again may arrive twice."""
    n = RESTARTED_RUN[strategy]
    producer = start("confirms/producer.py", "--strategy", strategy, "-n", str(n))
    deadline = time.monotonic() + TIMEOUT
    while not (ready_messages(amqp_url, "confirms") or 0) > 100:  # under way
        assert time.monotonic() < deadline and producer.process.poll() is None, producer.describe()
        time.sleep(0.02)  # a poll interval, bounded by the deadline: no event to wait on
    restartable.restart()
    assert producer.wait(120) == 0, producer.describe()
    assert " [!] Lost the broker: trying again for up to 30 s" in producer.stdout
    assert RECONNECTED in producer.stdout  # in the middle of the run, then
    [(_, confirmed, nacked, returned, resent)] = summaries(producer)
    assert (confirmed, returned) == (n, 0), producer.describe()
    consumer = start("confirms/consumer.py").wait_ready()
    whole = f"{strategy} of {n}: {n} received: none missing"
    consumer.wait_until_printed(whole, 60)
    [line] = [line for line in consumer.stdout if line.startswith(whole)]
    twice = int(re.search(r"(\d+) twice", line)[1])
    assert twice <= resent + nacked
    report(f"confirms, broker restarted mid-run: {strategy} of {n}: {resent} sent again, "
           f"{nacked} nacked; the consumer: none missing, {twice} twice")  # fmt: skip


# publish_many() in the test's own process, as tools/bench.py and a reader's code use it.


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


def test_publish_many_sends_a_refused_message_again_until_the_broker_takes_it(amqp_url, full_queue):
    sending = Call(lambda: publish_many(amqp_url, full_queue, ["again"], timeout=TIMEOUT))
    deadline = time.monotonic() + TIMEOUT
    taken = []
    while not taken:  # room again once the filler is taken; the resend then lands
        taken = [body for _, body in get_all(amqp_url, full_queue)]
        assert time.monotonic() < deadline
        time.sleep(0.1)  # a poll interval, bounded by the deadline
    done = sending.result(TIMEOUT)
    assert done.confirmed == 1
    everything = taken + [body for _, body in get_all(amqp_url, full_queue)]
    assert [body for body in everything if body != b"filler"] == [b"again"]


def test_a_queue_that_exists_with_other_arguments_is_one_error_line(start, amqp_url):
    with bare(amqp_url) as connection:  # a classic "confirms", as someone else declared it
        connection.channel().queue_declare("confirms", durable=True)
    producer = start("confirms/producer.py", "-n", "5")
    assert producer.wait() == 1, producer.describe()
    [line] = producer.stderr
    assert line.startswith("error: the broker refused: PRECONDITION_FAILED")
    assert "run with QUEUE_TYPE=classic, or delete it" in line


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
