"""Run an exchange pattern's consumers and producers together and see who received what."""

from collections import Counter


def deliveries(start, pattern, consumer_args, producer_args, probe_args):
    """Start a consumer per entry of consumer_args, then a producer per entry of
    producer_args, all at once; return, per consumer, a Counter of the producers'
    messages it received, by routing key.

    To know that nothing more is on its way, each consumer is then sent one last
    message (probe_args[i] must route to consumer i). Its queue is first in,
    first out, so once that message arrives every earlier one has.
    """
    consumers = [start(f"{pattern}/consumer.py", *args).wait_ready() for args in consumer_args]
    producers = [start(f"{pattern}/producer.py", *args) for args in producer_args]
    sent = {}
    for args, producer in zip(producer_args, producers, strict=True):
        assert producer.wait() == 0, producer.describe()
        sent.update((body, args[0] if args else "") for body in producer.sent())
    probes = [start(f"{pattern}/producer.py", *args, "-n", "1") for args in probe_args]
    for consumer, probe in zip(consumers, probes, strict=True):
        assert probe.wait() == 0, probe.describe()
        consumer.wait_for_line(f"{probe.sent()[0]} received")
    probed = {body for probe in probes for body in probe.sent()}
    received = []
    for consumer in consumers:
        strays = [body for body in consumer.received() if body not in sent and body not in probed]
        assert strays == [], consumer.describe()
        ordered = [body for body in consumer.received() if body in sent]
        for key in set(sent.values()):  # one producer's messages arrive in its order
            mine = [body for body in ordered if sent[body] == key]
            assert mine == sorted(mine, key=lambda body: int(body.split()[0])), mine
        received.append(Counter(sent[body] for body in ordered))
    return received
