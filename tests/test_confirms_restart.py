"""Publisher confirms: a broker restart in the middle of a run loses nothing, with each
strategy (a file of its own, so that the tests share out between the two workers)."""

import contextlib
import os
import re
import time
import urllib.parse

import pytest
from inprocess import ready_messages
from processes import TIMEOUT
from test_confirms import summaries

from common.connection import RECONNECTED

pytestmark = pytest.mark.restarts  # make test-restarts: apart, for time

# Enough messages that a restart lands in the middle of the run, at each strategy's pace.
RESTARTED_RUN = {"each": 15_000, "batch": 100_000, "async": 100_000}


def poll_until(condition):
    """Until condition() holds (no output announces it); fail at the deadline."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "the producers never got going"
        time.sleep(0.02)  # a poll interval, bounded by the deadline


def connected(pid, port):
    """Whether process pid has a TCP connection established to port (Linux's /proc)."""
    sockets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            sockets.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    with open(f"/proc/{pid}/net/tcp") as table:  # local, remote, state, ..., inode
        rows = [row.split() for row in table.readlines()[1:]]
    return any(
        row[3] == "01" and int(row[2].split(":")[1], 16) == port and f"socket:[{row[9]}]" in sockets
        for row in rows
    )


def test_a_broker_restart_in_the_middle_of_runs_loses_nothing(start, restartable, amqp_url, report):
    """Each strategy's producer, all three at once, and the broker restarted while they
    run (one restart: it is the slow part). Each knows what the broker confirmed before
    it went away; what it did not confirm, it sends again once the broker is back. The
    consumer, started after, finds none missing in any run; what was sent again may
    arrive twice."""
    producers = {
        strategy: start("confirms/producer.py", "--strategy", strategy, "-n", str(n))
        for strategy, n in RESTARTED_RUN.items()
    }
    # Each connected (a broken first connection is final: no broker there), and then
    # 3,000 more messages in the queue, for the slowest handshake to be over.
    port = urllib.parse.urlsplit(amqp_url).port
    poll_until(lambda: all(connected(p.process.pid, port) for p in producers.values()))
    since = ready_messages(amqp_url, "confirms") or 0
    poll_until(lambda: (ready_messages(amqp_url, "confirms") or 0) > since + 3000)
    ended = [s for s, producer in producers.items() if producer.printed_line_starting(f"{s}: ")]
    assert ended == [], f"ended before the restart: {ended}; give them more messages"
    # Stopped cleanly at once (SIGTERM, as a service manager stops it), then started:
    # `rabbitmqctl stop_app` takes seconds to start on a busy machine, and async had
    # sent its 100,000 by then.
    restartable.shut_down()
    restartable.start_again()
    consumer = start("confirms/consumer.py").wait_ready()
    for strategy, producer in producers.items():
        n = RESTARTED_RUN[strategy]
        assert producer.wait(120) == 0, producer.describe()
        assert " [!] Lost the broker: trying again for up to 30 s" in producer.stdout
        assert RECONNECTED in producer.stdout  # in the middle of the run, then
        [(_, confirmed, nacked, returned, resent)] = summaries(producer)
        assert (confirmed, returned) == (n, 0), producer.describe()
        whole = f"{strategy} of {n}: {n} received: none missing"
        consumer.wait_until_printed(whole, 60)
        [line] = [line for line in consumer.stdout if line.startswith(whole)]
        twice = int(re.search(r"(\d+) twice", line)[1])
        assert twice <= resent + nacked
        report(f"confirms, broker restarted mid-run: {strategy} of {n}: {resent} sent again, "
               f"{nacked} nacked; the consumer: none missing, {twice} twice")  # fmt: skip
