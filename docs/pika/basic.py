"""Basic, in bare pika: the calls basic/producer.py and basic/consumer.py make.

Run:      python docs/pika/basic.py receive   (in one terminal; Ctrl-C stops it)
          python docs/pika/basic.py send      (in another)
          python docs/pika/basic.py           (or both in one run, which ends by itself)
Observe:  the message is sent, confirmed, then received and acknowledged (after
          any that waited in the queue before it).
"""

import argparse
import os
import signal
import sys

import pika

parser = argparse.ArgumentParser(description="Basic, in bare pika.")
parser.add_argument("side", nargs="?", choices=["send", "receive"], help="default: both")
side = parser.parse_args().side  # None: both, in one run
# Ctrl-C: out at once, with no traceback (the broker requeues what we had not acked);
# 0 for receive, which stops no other way, 130 for a run cut short.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0 if side == "receive" else 130))

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
# Durable and quorum, as RabbitMQ's tutorials declare it: it outlives a restart. Both
# sides declare it, alike, so that either may start first.
channel.queue_declare("basic", durable=True, arguments={"x-queue-type": "quorum"})

if side != "receive":
    channel.confirm_delivery()  # basic_publish now returns once the broker has the message
    channel.basic_publish(
        exchange="",  # the default exchange: it delivers to the queue named routing_key
        routing_key="basic",
        body=b"Hello World",
        properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
        mandatory=True,  # no such queue: pika raises UnroutableError instead of silence
    )
    print(" [x] Sent 'Hello World'")


def on_message(channel, method, properties, body):
    print(f" [x] Received {body.decode()!r}")
    channel.basic_ack(method.delivery_tag)  # only now may the broker forget it
    if side is None and body == b"Hello World":  # ours: earlier messages may wait before it
        channel.stop_consuming()


if side != "send":
    channel.basic_qos(prefetch_count=10)  # at most 10 unacknowledged messages on their way
    channel.basic_consume("basic", on_message)  # auto_ack=False: we acknowledge ourselves
    if side == "receive":
        print(" [*] Waiting for messages. To exit press CTRL+C")
    channel.start_consuming()
connection.close()
