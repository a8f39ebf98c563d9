"""Routing, in bare pika: a direct exchange delivers by the exact routing key.

Run:      python docs/pika/routing.py receive   (in one terminal; Ctrl-C stops it)
          python docs/pika/routing.py send      (in another)
          python docs/pika/routing.py           (or both in one run, which ends by itself)
Observe:  the queue bound to "red" and "green" gets those two, not "blue".
"""

import argparse
import os
import signal
import sys

import pika

parser = argparse.ArgumentParser(description="Routing, in bare pika.")
parser.add_argument("side", nargs="?", choices=["send", "receive"], help="default: both")
side = parser.parse_args().side  # None: both, in one run
# Ctrl-C: out at once, with no traceback; 0 for receive, which stops no other way, 130
# for a run cut short.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0 if side == "receive" else 130))

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.exchange_declare("routing", exchange_type="direct", durable=True)

if side != "send":  # bound before anything is sent: unbound keys are dropped
    queue = channel.queue_declare("", exclusive=True).method.queue
    for key in ("red", "green"):
        channel.queue_bind(queue, "routing", routing_key=key)  # one binding per key

if side != "receive":
    channel.confirm_delivery()
    for key in ("blue", "red", "green"):
        try:
            channel.basic_publish("routing", key, f"Hello {key}".encode(), mandatory=True)
            print(f" [x] Sent {key!r}")
        except pika.exceptions.UnroutableError:  # mandatory, and no queue bound to blue
            print(f" [!] Nobody is bound to {key!r}: the broker returned it")


def on_message(channel, method, properties, body):
    print(f" [x] Received {method.routing_key}: {body.decode()!r}")
    channel.basic_ack(method.delivery_tag)
    if side is None and method.routing_key == "green":  # our last
        channel.stop_consuming()


if side != "send":
    channel.basic_qos(prefetch_count=10)  # as Basic's: at most 10 unacknowledged at a time
    channel.basic_consume(queue, on_message)
    if side == "receive":
        print(" [*] Waiting for messages. To exit press CTRL+C")
    channel.start_consuming()
connection.close()
