"""Publisher confirms, the scripts: each strategy confirms every message, and the consumer
counts them by sequence number (a broker restart mid-run: test_confirms_restart.py)."""

import re

import pytest
from inprocess import bare

STRATEGIES = ["each", "batch", "async"]
SUMMARY = re.compile(
    r"(each|batch|async): (\d+) confirmed in [\d.]+ s \([\d,]+ msg/s\); (\d+) nacked, "
    r"(\d+) returned, (\d+) sent again"
)


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


def test_a_queue_that_exists_with_other_arguments_is_one_error_line(start, amqp_url):
    with bare(amqp_url) as connection:  # a classic "confirms", as someone else declared it
        connection.channel().queue_declare("confirms", durable=True)
    producer = start("confirms/producer.py", "-n", "5")
    assert producer.wait() == 1, producer.describe()
    [line] = producer.stderr
    assert line.startswith("error: the broker refused: PRECONDITION_FAILED")
    assert "run with QUEUE_TYPE=classic, or delete it" in line
