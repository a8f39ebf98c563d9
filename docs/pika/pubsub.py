"""Publish/Subscribe, in bare pika: a fanout exchange, and a queue of one's own bound to it.

Run:      python docs/pika/pubsub.py receive   (in two terminals: two subscribers; Ctrl-C stops one)
          python docs/pika/pubsub.py send      (in a third)
          python docs/pika/pubsub.py           (or both in one run, which ends by itself)
Observe:  the message published to the exchange reaches every queue bound to it;
          with no subscriber, the broker returns it.
"""

import argparse
import os
import signal
import sys

import pika

parser = argparse.ArgumentParser(description="Publish/Subscribe, in bare pika.")
parser.add_argument("side", nargs="?", choices=["send", "receive"], help="default: both")
side = parser.parse_args().side  # None: both, in one run
# Ctrl-C: out at once, with no traceback; 0 for receive, which stops no other way, 130
# for a run cut short.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0 if side == "receive" else 130))

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.exchange_declare("pubsub", exchange_type="fanout", durable=True)

if side != "send":  # bound before anything is sent: a fanout keeps nothing for later
    # "": the broker names the queue; exclusive: it is ours alone, gone when we disconnect.
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, "pubsub")  # fanout: every bound queue gets every message

if side != "receive":
    channel.confirm_delivery()
    try:
        channel.basic_publish("pubsub", routing_key="", body=b"Hello World", mandatory=True)
        print(" [x] Sent 'Hello World' to every subscriber")
    except pika.exceptions.UnroutableError:  # mandatory, and no queue bound
        print(" [!] Nobody is subscribed: the broker returned it")


def on_message(channel, method, properties, body):
    print(f" [x] Received {body.decode()!r} in {queue}")
    channel.basic_ack(method.delivery_tag)
    if side is None:  # our queue, bound just now: this is ours
        channel.stop_consuming()


if side != "send":
    channel.basic_qos(prefetch_count=10)  # as Basic's: at most 10 unacknowledged at a time
    channel.basic_consume(queue, on_message)
    if side == "receive":
        print(" [*] Waiting for messages. To exit press CTRL+C")
    channel.start_consuming()
connection.close()
