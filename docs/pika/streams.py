"""Streams, in bare pika: the calls streams/producer.py and streams/consumer.py make.

Run:      python docs/pika/streams.py receive   (in one terminal, or several; Ctrl-C stops one)
          python docs/pika/streams.py send      (in another, as often as you like)
          python docs/pika/streams.py           (or both in one run, which ends by itself)
Observe:  receive reads the stream from its first message, each with its offset,
          and then what is appended: every receiver gets every message.
"""

import argparse
import os
import signal
import sys

import pika

parser = argparse.ArgumentParser(description="Streams, in bare pika.")
parser.add_argument("side", nargs="?", choices=["send", "receive"], help="default: both")
side = parser.parse_args().side  # None: both, in one run
# Ctrl-C: out at once, with no traceback; 0 for receive, which stops no other way, 130
# for a run cut short.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0 if side == "receive" else 130))

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
# A stream keeps every message, read or not: without a limit it would fill the disk.
retention = {"x-max-age": "7D", "x-max-length-bytes": 1_000_000_000}
retention["x-stream-max-segment-size-bytes"] = 100_000_000  # dropped a segment at a time
channel.queue_declare("events", durable=True, arguments={"x-queue-type": "stream", **retention})


def on_message(channel, method, properties, body):
    offset = properties.headers["x-stream-offset"]  # its place in the stream, from 0
    print(f" [x] Received {body.decode()!r} at offset {offset}")
    channel.basic_ack(method.delivery_tag)  # lets the broker send one more: it keeps it all
    if side is None:  # both in one run: ours is the only one since we subscribed
        channel.stop_consuming()


if side != "send":
    channel.basic_qos(prefetch_count=100)  # a stream requires one
    start = "first" if side == "receive" else "next"  # the oldest kept, or only what comes
    channel.basic_consume("events", on_message, arguments={"x-stream-offset": start})
if side != "receive":
    channel.confirm_delivery()
    persistent = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
    channel.basic_publish("", "events", b"Hello World", persistent, mandatory=True)
    print(" [x] Sent 'Hello World'")
if side != "send":
    if side == "receive":
        print(" [*] Waiting for messages. To exit press CTRL+C")
    channel.start_consuming()
connection.close()
