"""Topics, in bare pika: a topic exchange matches the routing key against patterns.

Run:      python docs/pika/topics.py receive   (in one terminal; Ctrl-C stops it)
          python docs/pika/topics.py send      (in another)
          python docs/pika/topics.py           (or both in one run, which ends by itself)
Observe:  *.orange.* matches one word each side of orange; lazy.# matches lazy
          and anything after it; quick.brown.fox matches neither.
"""

import argparse
import os
import signal
import sys

import pika

parser = argparse.ArgumentParser(description="Topics, in bare pika.")
parser.add_argument("side", nargs="?", choices=["send", "receive"], help="default: both")
side = parser.parse_args().side  # None: both, in one run
# Ctrl-C: out at once, with no traceback; 0 for receive, which stops no other way, 130
# for a run cut short.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0 if side == "receive" else 130))

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.exchange_declare("topics", exchange_type="topic", durable=True)

if side != "send":
    queue = channel.queue_declare("", exclusive=True).method.queue
    for pattern in ("*.orange.*", "lazy.#"):  # *: exactly one word; #: zero or more
        channel.queue_bind(queue, "topics", routing_key=pattern)

# Sent as in Routing: with mandatory, a key that matches no binding comes back.
if side != "receive":
    channel.confirm_delivery()
    for key in ("quick.brown.fox", "quick.orange.rabbit", "lazy"):
        try:
            channel.basic_publish("topics", key, key.encode(), mandatory=True)
            print(f" [x] Sent {key!r}")
        except pika.exceptions.UnroutableError:
            print(f" [!] {key!r} matches no binding: the broker returned it")


def on_message(channel, method, properties, body):
    print(f" [x] Received {method.routing_key!r}")
    channel.basic_ack(method.delivery_tag)
    if side is None and method.routing_key == "lazy":  # our last
        channel.stop_consuming()


if side != "send":
    channel.basic_qos(prefetch_count=10)  # as Basic's: at most 10 unacknowledged at a time
    channel.basic_consume(queue, on_message)
    if side == "receive":
        print(" [*] Waiting for messages. To exit press CTRL+C")
    channel.start_consuming()
connection.close()
