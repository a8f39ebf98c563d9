"""The README's walkthrough, one scenario per section: the scripts run as it tells a
reader to run them, each step named by the transcript it shows.

The same scenarios feed `make readme` and tests/test_readme.py (tools/transcripts.py
keeps what each step printed) and `make demo` (tools/demo.py prints it as it comes).
Each takes a run with start(), finish(), stop() and ctl() (transcripts.Recorder),
waits for what the README says happens, and returns that as one line: a check
that fails raises AssertionError. Its docstring is what the demo says to watch for.
"""

import tempfile

from processes import ROOT, wait_until

from common.consuming import DONE
from rpc.calls import AWAITING


def received_all(consumer, producers):
    """What the consumer received of what these producers sent (not what an earlier run
    left in a queue), in the order received, once it has all of it."""
    sent = [body for producer in producers for body in producer.sent()]
    wait_until(lambda: set(sent) <= set(consumer.received()), "not all received", consumer)
    return [body for body in consumer.received() if body in sent]


def basic(r):
    """One producer, one queue, one consumer: five messages sent, then received."""
    producer = r.finish("basic-producer", "basic/producer.py")
    r.ctl("basic-queues", "list_queues", showing="basic\t5")
    consumer = r.start("basic-consumer", "basic/consumer.py").wait_ready()
    assert received_all(consumer, [producer]) == producer.sent(), "out of order"
    r.stop(consumer)
    return "the consumer received the 5 messages the producer sent, in order"


def idle(worker):
    """Whether the worker is done with every task it received: its last step printed DONE
    (a reconnection's line after it does not count)."""
    steps = [line for line in worker.stdout if line == DONE or line.endswith(" received")]
    return not steps or steps[-1] == DONE


def workers(r):
    """Three workers share six tasks: each task goes to exactly one of them."""
    workers = [r.start(f"workers-consumer-{i}", "workers/consumer.py") for i in (1, 2, 3)]
    for worker in workers:
        worker.wait_ready()
    r.ctl("workers-consumers", "list_consumers", "queue_name", "ack_required", "prefetch_count")
    producer = r.finish("workers-producer", "workers/producer.py", "-n", "6")
    tasks = producer.sent()

    def done():  # each worker's tasks, once every task is received and the last one done
        got = [[body for body in worker.received() if body in tasks] for worker in workers]
        everything = set(tasks) <= {body for each in got for body in each}
        return got if everything and all(map(idle, workers)) else None

    wait_until(done, "not every task done", *workers)
    shares = [len(each) for each in done()]
    assert sum(shares) == len(tasks), "a task was done twice"
    for worker in workers:
        r.stop(worker)
    return f"{len(tasks)} tasks, each done once, by the three: {', '.join(map(str, shares))}"


def pubsub(r):
    """A fanout exchange: each of three subscribers receives every message; with
    no subscriber, a message goes nowhere."""
    subscribers = [r.start(f"pubsub-consumer-{i}", "pubsub/consumer.py") for i in (1, 2, 3)]
    for subscriber in subscribers:
        subscriber.wait_ready()
    r.ctl("pubsub-queues", "list_queues", "name", "exclusive", "messages")
    producer = r.finish("pubsub-producer", "pubsub/producer.py")
    for subscriber in subscribers:
        assert received_all(subscriber, [producer]) == producer.sent(), "missed, or out of order"
        r.stop(subscriber, keep=subscriber is subscribers[0])  # the others print the same
    alone = r.finish("pubsub-producer-alone", "pubsub/producer.py", "-n", "1")
    told = sum("unroutable" in line for line in alone.stderr)
    assert told == 1 and not alone.sent(), "not reported unroutable with no subscriber"
    return "3 subscribers each received all 5 messages; alone, the producer was told"


def routing(r):
    """A direct exchange: blue to one consumer, red and green to the other; nobody
    bound black, so the producer reports it unroutable."""
    blue = r.start("routing-consumer-blue", "routing/consumer.py", "blue").wait_ready()
    red_green = r.start("routing-consumer-red-green", "routing/consumer.py", "red", "green")
    red_green.wait_ready()
    sent = {
        key: r.finish("routing-producers", "routing/producer.py", key, "-n", "1")
        for key in ("blue", "red", "green")
    }
    r.ctl("routing-bindings", "list_bindings", "source_name", "routing_key", "destination_name")
    received_all(blue, [sent["blue"]])
    received_all(red_green, [sent["red"], sent["green"]])
    strays = set(blue.received()) & set(sent["red"].sent() + sent["green"].sent())
    strays |= set(red_green.received()) & set(sent["blue"].sent())
    assert not strays, f"a colour reached a consumer that did not bind it: {strays}"
    r.stop(blue)
    r.stop(red_green)
    black = r.finish("routing-producer-black", "routing/producer.py", "black", "-n", "1")
    unroutable = sum("unroutable" in line for line in black.stderr)
    assert unroutable == 1 and not black.sent(), "black was not reported unroutable"
    return "blue reached one consumer, red and green the other, black nobody"


TOPIC_KEYS = [
    "quick.orange.rabbit",
    "lazy.orange.elephant",
    "quick.orange.fox",
    "lazy.brown.fox",
    "lazy.pink.rabbit",
    "lazy",
]


def topics(r):
    """A topic exchange: * is one word, # zero or more; quick.brown.fox matches no
    binding."""
    orange = r.start("topics-consumer-orange", "topics/consumer.py", "*.orange.*").wait_ready()
    rabbit_lazy = r.start(
        "topics-consumer-rabbit-lazy", "topics/consumer.py", "*.*.rabbit", "lazy.#"
    ).wait_ready()
    sent = {
        key: r.finish("topics-producers", "topics/producer.py", key, "-n", "1")
        for key in TOPIC_KEYS
    }
    received_all(orange, [sent[key] for key in TOPIC_KEYS if ".orange." in key])
    keys = [body.rsplit(" - ", 1)[1] for body in orange.received()]
    assert all(".orange." in key for key in keys), f"*.orange.* got {keys}"
    received_all(rabbit_lazy, [sent[key] for key in TOPIC_KEYS if key.endswith("rabbit")])
    received_all(rabbit_lazy, [sent[key] for key in TOPIC_KEYS if key.startswith("lazy")])
    keys = [body.rsplit(" - ", 1)[1] for body in rabbit_lazy.received()]
    wanted = [key for key in keys if key.endswith(".rabbit") or key.split(".")[0] == "lazy"]
    assert keys == wanted, f"*.*.rabbit and lazy.# got {keys}"
    assert keys.count("lazy.pink.rabbit") == 1, "two bindings matched: two copies"
    r.stop(orange)
    r.stop(rabbit_lazy)
    unmatched = r.finish(
        "topics-producer-unmatched", "topics/producer.py", "quick.brown.fox", "-n", "1"
    )
    told = sum("unroutable" in line for line in unmatched.stderr)
    assert not unmatched.sent() and told == 1, "quick.brown.fox matched a binding"
    return "*.orange.* got 3 keys, *.*.rabbit and lazy.# got 5, quick.brown.fox none"


FIBONACCI = {0: 0, 1: 1, 2: 1, 30: 832040, 90: 2880067194370816120}


def rpc(r):
    """Two RPC servers share five requests; the client prints the answers in the order
    it asked. With no server, the client says so instead of waiting."""
    servers = [r.start(f"rpc-consumer-{i}", "rpc/consumer.py") for i in (1, 2)]
    for server in servers:
        server.wait_for_line(AWAITING)
    r.ctl("rpc-queues", "list_queues", "name", "durable", "consumers", showing="rpc_queue\ttrue\t2")
    client = r.finish("rpc-producer", "rpc/producer.py", *map(str, FIBONACCI))
    answers = [line for line in client.stdout if line.startswith(" [.] Got")]
    assert answers == [f" [.] Got fib({n}) = {v}" for n, v in FIBONACCI.items()], answers
    shares = [sum(line.startswith(" [.] fib(") for line in s.stdout) for s in servers]
    for server in servers:
        r.stop(server)
    r.finish("rpc-producer-alone", "rpc/producer.py", "30", "--timeout", "2", code=1)
    return f"5 answers, in order, from both servers ({shares[0]} and {shares[1]})"


CONFIRMS_RUN = 120.0  # seconds for the three strategies' runs of 10,000


def confirms(r):
    """Three strategies of publisher confirms, 10,000 messages each: every message
    confirmed, at three rates; the consumer counts them by number, none missing."""
    consumer = r.start("confirms-consumer", "confirms/consumer.py").wait_ready()
    # "each" waits for 10,000 confirms one after the other: 5 s at rest, 14 s seen on a
    # busy machine, more than the 15 s a script is given to end.
    producer = r.finish(
        "confirms-producer",
        "confirms/producer.py",
        "--strategy",
        "all",
        "-n",
        "10000",
        timeout=CONFIRMS_RUN,
    )
    rates = [line.split("(")[1].split(" ")[0] for line in producer.stdout]
    counted = [f"{strategy} of 10000: 10000 received: none missing, 0 twice"
               for strategy in ("each", "batch", "async")]  # fmt: skip
    wait_until(lambda: set(counted) <= set(consumer.stdout), "not all counted", consumer)
    r.stop(consumer)
    return f"each strategy had 10,000 confirmed (msg/s: {', '.join(rates)}), none missing"


def read(consumer):
    """What a stream's consumer printed: "<offset> <body> received" -> {body: offset}."""
    return {line.split(" ", 1)[1]: int(line.split(" ", 1)[0]) for line in consumer.received()}


def streams(r):
    """A stream keeps what it is sent, for every reader: a consumer started later reads
    it all from the first message, and one with --resume goes on after the last it
    handled, even after it stopped."""
    live = r.start("streams-consumer", "streams/consumer.py").wait_ready()
    sent = r.finish("streams-producer", "streams/producer.py", "-n", "3").sent()
    late = r.start("streams-late-consumer", "streams/consumer.py", "--offset", "first")
    for consumer in (live, late):
        wait_until(lambda c=consumer: set(sent) <= set(read(c)), "not all read", consumer)
        r.stop(consumer)
    assert list(read(live).values()) == list(read(late).values()) == [0, 1, 2]
    with tempfile.TemporaryDirectory() as here:  # where --resume keeps its file
        consumer = ROOT / "streams/consumer.py"
        first = r.start("streams-resume", consumer, "--offset", "1", "--resume", "me", cwd=here)
        wait_until(lambda: set(sent[1:]) <= set(read(first)), "not read", first)
        r.stop(first)
        more = r.finish("streams-resume", "streams/producer.py", "-n", "2").sent()
        again = r.start("streams-resume", consumer, "--resume", "me", cwd=here)
        wait_until(lambda: set(more) <= set(read(again)), "not resumed", again)
        r.stop(again)
    assert list(read(again).values()) == [3, 4], "a gap, or one read twice"
    return "every consumer read every message; --resume went on after the last it handled"


def errors(r):
    """The errors the Troubleshooting section explains, each as a reader meets it."""
    refused = "amqp://guest:secret@localhost:5673/"  # nothing listens there, we trust
    r.finish("errors-refused", "basic/producer.py", "--url", refused, code=1)
    wrong_password = r.url.replace("guest:guest@", "guest:secret@")
    r.finish("errors-password", "basic/consumer.py", "--url", wrong_password, code=1)
    nowhere = r.url.rsplit("/", 1)[0] + "/nowhere"
    r.finish("errors-vhost", "basic/consumer.py", "--url", nowhere, code=1)
    r.finish("errors-no-server", "rpc/producer.py", "30", code=1)
    with r.raw_channel() as channel:  # queues declared by older code, or someone else's
        limited = {"x-queue-type": "quorum", "x-max-length": 10}
        channel.queue_declare("basic", durable=True, arguments=limited)
        channel.queue_declare("task_queue", durable=True)  # classic, as this repository once did
    r.finish("errors-precondition", "basic/producer.py", code=1)
    r.finish("errors-queue-type", "workers/producer.py", code=1)
    return "each error is one line, and says what to do"


def pika(r):
    """The pattern sections' bare pika scripts (docs/pika/), each run once: each ends by
    itself once it has received what it sent. Then Basic's in two terminals, receive
    waiting until Ctrl-C while send sends."""
    for pattern in PATTERNS:
        script = r.finish(f"pika-{pattern}", f"docs/pika/{pattern}.py")
        assert script.process.returncode == 0 and not script.stderr, script.describe()
        assert any("Received" in line or "Got" in line or "Done" in line for line in script.stdout)
    unbuffered = {"PYTHONUNBUFFERED": "1"}  # each line at once, as in a terminal
    receive = r.start("pika-basic-receive", "docs/pika/basic.py", "receive", env=unbuffered)
    receive.wait_ready()
    r.finish("pika-basic-send", "docs/pika/basic.py", "send")
    receive.wait_for_line(" [x] Received 'Hello World'")
    r.stop(receive)
    return "each ran, and received what it sent; basic's two sides too"


PATTERNS = {
    f.__name__: f for f in (basic, workers, pubsub, routing, topics, rpc, confirms, streams)
}
SCENARIOS = {**PATTERNS, "errors": errors, "pika": pika}
