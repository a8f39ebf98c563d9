"""The bare pika scripts (docs/pika/) in two terminals, as RabbitMQ's tutorials are run:
one side waits until Ctrl-C, the other sends and ends; each stops cleanly on Ctrl-C.
Run with no argument, they do both and end by themselves: the README's pika scenario."""

import signal

import pytest
from processes import wait_until
from transcripts import normalized

from common.consuming import READY
from rpc.calls import AWAITING

UNBUFFERED = {"PYTHONUNBUFFERED": "1"}  # like a terminal: each line as it is printed
SIDES = {"rpc": ("serve", "call")}  # the others: receive and send
# Each script: how many receive at once, what the sender prints, what each receiver
# prints after its ready line (workers: all of them together, shared out).
RUNS = {
    "basic": (1, [" [x] Sent 'Hello World'"], [" [x] Received 'Hello World'"]),
    "workers": (
        2,
        [" [x] Sent 'First task.'", " [x] Sent 'Second task..'", " [x] Sent 'Third task...'"],
        [" [x] Done 'First task.'", " [x] Done 'Second task..'", " [x] Done 'Third task...'"],
    ),
    "pubsub": (
        2,
        [" [x] Sent 'Hello World' to every subscriber"],
        [" [x] Received 'Hello World' in amq.gen-<name>"],
    ),
    "routing": (
        1,
        [
            " [!] Nobody is bound to 'blue': the broker returned it",
            " [x] Sent 'red'",
            " [x] Sent 'green'",
        ],
        [" [x] Received red: 'Hello red'", " [x] Received green: 'Hello green'"],
    ),
    "topics": (
        1,
        [
            " [!] 'quick.brown.fox' matches no binding: the broker returned it",
            " [x] Sent 'quick.orange.rabbit'",
            " [x] Sent 'lazy'",
        ],
        [" [x] Received 'quick.orange.rabbit'", " [x] Received 'lazy'"],
    ),
    "rpc": (1, [" [x] Requesting fib(30)", " [.] Got fib(30) = 832040"], [" [.] fib(30)"]),
    "confirms": (
        1,
        [
            " [x] each: 1000 confirmed in <seconds> s",
            " [x] batch: 1000 confirmed in <seconds> s",
            " [x] async: 1000 confirmed in <seconds> s",
        ],
        [" [x] Received 1000", " [x] Received 2000", " [x] Received 3000"],
    ),
    # Two readers of the stream: each gets the message, at the same offset.
    "streams": (2, [" [x] Sent 'Hello World'"], [" [x] Received 'Hello World' at offset 0"]),
}


def receive(start, script):
    """One receiving side, started and waiting."""
    side = SIDES.get(script, ("receive",))[0]
    receiver = start(f"docs/pika/{script}.py", side, env=UNBUFFERED)
    receiver.wait_for_line(AWAITING if script == "rpc" else READY)
    return receiver


@pytest.mark.parametrize("script", RUNS)
def test_one_side_sends_and_the_other_receives_until_ctrl_c(start, script):
    receivers, sent, received = RUNS[script]
    receivers = [receive(start, script) for _ in range(receivers)]
    sender = start(f"docs/pika/{script}.py", SIDES.get(script, (None, "send"))[1])
    assert sender.wait() == 0, sender.describe()
    assert normalized(sender.stdout) == sent and sender.stderr == []

    def lines():  # what each receiver printed after its ready line
        return [normalized(receiver.stdout[1:]) for receiver in receivers]

    if script == "workers":  # the tasks shared out: each done once, by one or the other
        wait_until(lambda: sorted(sum(lines(), [])) == sorted(received), "not done", *receivers)
    else:  # every receiver gets every message
        wait_until(lambda: lines() == [received] * len(receivers), "not received", *receivers)
    for receiver in receivers:
        assert receiver.process.poll() is None, "a receiving side ended by itself"
        assert receiver.stop(signal.SIGINT) == 0, receiver.describe()
        assert receiver.stderr == []


@pytest.mark.parametrize("script", RUNS)
def test_ctrl_c_on_a_waiting_receiver_is_a_clean_exit_0(start, script):
    receiver = receive(start, script)
    assert receiver.stop(signal.SIGINT) == 0, receiver.describe()
    assert receiver.stderr == [], "a traceback, or an error line"


def test_ctrl_c_on_a_call_with_no_server_is_a_clean_exit_130(start):
    """The client waits for an answer that no server gives: cut short, it exits 130."""
    caller = start("docs/pika/rpc.py", "call", env=UNBUFFERED)
    caller.wait_for_line(" [x] Requesting fib(30)")
    assert caller.stop(signal.SIGINT) == 130, caller.describe()
    assert caller.stderr == []


def test_with_no_argument_it_ends_by_itself_with_what_it_sent(start):
    both = start("docs/pika/pubsub.py")
    assert both.wait() == 0, both.describe()
    assert normalized(both.stdout) == [
        " [x] Sent 'Hello World' to every subscriber",
        " [x] Received 'Hello World' in amq.gen-<name>",
    ]


def test_a_stream_receiver_started_after_the_send_reads_it_from_the_first(start):
    """What a stream keeps waits for a reader that comes later: receive starts at first."""
    sender = start("docs/pika/streams.py", "send")
    assert sender.wait() == 0, sender.describe()
    receiver = receive(start, "streams")
    wait_until(lambda: len(receiver.stdout) > 1, "nothing received", receiver)
    assert receiver.stdout[1:] == [" [x] Received 'Hello World' at offset 0"]
    assert receiver.stop() == 0 and receiver.stderr == []
