"""Publisher confirms, in bare pika: the three strategies confirms/producer.py offers.

Run:      python docs/pika/confirms.py receive   (in one terminal; Ctrl-C stops it)
          python docs/pika/confirms.py send      (in another)
          python docs/pika/confirms.py           (or both in one run, which ends by itself)
Observe:  1,000 messages three times, every one confirmed: one at a time on a
          BlockingConnection, then in batches and async on a SelectConnection
          (a BlockingConnection's publish waits for its confirm: it can do only the
          first); then all 3,000 received, a line per 1,000. Stop
          confirms/consumer.py first, or it takes them.
"""

import argparse
import os
import signal
import sys
import time

import pika

parser = argparse.ArgumentParser(description="Publisher confirms, in bare pika.")
parser.add_argument("side", nargs="?", choices=["send", "receive"], help="default: both")
side = parser.parse_args().side  # None: both, in one run
# Ctrl-C: out at once, with no traceback; 0 for receive, which stops no other way, 130
# for a run cut short.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0 if side == "receive" else 130))

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
N, BATCH, WINDOW = 1000, 100, 1000
persistent = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.queue_declare("confirms", durable=True, arguments={"x-queue-type": "quorum"})

if side != "receive":
    # 1. One at a time: with confirms on, basic_publish returns once the broker has it.
    channel.confirm_delivery()
    began = time.perf_counter()
    for i in range(N):
        channel.basic_publish("", "confirms", f"{i} each".encode(), persistent, mandatory=True)
    print(f" [x] each: {N} confirmed in {time.perf_counter() - began:.2f} s")


def publish(strategy, window):
    """2 and 3: publish up to window messages, and let the confirms come as they will:
    a batch waits for all of its confirms; async sends one more per confirm."""
    unconfirmed = set()  # delivery tags: the channel numbers its messages 1, 2, 3, ...
    sent, refused = 0, []

    def send_more(channel):
        nonlocal sent
        while sent < N and len(unconfirmed) < window:
            channel.basic_publish("", "confirms", f"{sent} {strategy}".encode(), persistent)
            sent += 1
            unconfirmed.add(sent)

    def on_confirm(frame):  # Basic.Ack (or Basic.Nack: refused) of one tag, or all up to it
        tag = frame.method.delivery_tag
        unconfirmed.difference_update(
            {t for t in unconfirmed if t <= tag} if frame.method.multiple else {tag}
        )
        if isinstance(frame.method, pika.spec.Basic.Nack):  # to send again; here, we stop
            refused.append(tag)
            channel.connection.close()
        elif sent == N and not unconfirmed:
            channel.connection.close()
        elif strategy == "async" or not unconfirmed:
            send_more(channel)

    def on_channel(opened):
        nonlocal channel
        channel = opened
        channel.confirm_delivery(on_confirm, callback=lambda frame: send_more(channel))

    channel = None
    began = time.perf_counter()
    connection = pika.SelectConnection(
        pika.URLParameters(url),
        on_open_callback=lambda opened: opened.channel(on_open_callback=on_channel),
        on_close_callback=lambda closed, why: closed.ioloop.stop(),
    )
    connection.ioloop.start()  # until the connection closes: done, refused, or lost
    if refused or unconfirmed or sent < N:  # pika takes an exception raised here as a loss
        raise SystemExit(f"error: {strategy}: not all confirmed (refused: {refused[:5]})")
    print(f" [x] {strategy}: {N} confirmed in {time.perf_counter() - began:.2f} s")


if side != "receive":
    publish("batch", BATCH)
    publish("async", WINDOW)

if side != "send":
    channel.basic_qos(prefetch_count=100)  # many on their way at once, but not all
    if side == "receive":
        print(" [*] Waiting for messages. To exit press CTRL+C")
    for received, (method, _, _) in enumerate(channel.consume("confirms"), start=1):
        channel.basic_ack(method.delivery_tag)
        if received % N == 0:  # a line per 1,000, not one per message
            print(f" [x] Received {received}")
        if side is None and received == 3 * N:  # all we sent, if none waited there before
            break
    channel.cancel()
connection.close()
