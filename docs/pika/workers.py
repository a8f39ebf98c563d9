"""Workers, in bare pika: fair dispatch, and an acknowledgement after the work.

Run:      python docs/pika/workers.py receive   (in two terminals: two workers; Ctrl-C stops one)
          python docs/pika/workers.py send      (in a third)
          python docs/pika/workers.py           (or both in one run, which ends by itself)
Observe:  three tasks, each acknowledged only once it is done; with two workers
          running, each takes the next task as soon as it is free.
"""

import argparse
import os
import signal
import sys
import time

import pika

parser = argparse.ArgumentParser(description="Workers, in bare pika.")
parser.add_argument("side", nargs="?", choices=["send", "receive"], help="default: both")
side = parser.parse_args().side  # None: both, in one run
# Ctrl-C: out at once, with no traceback (the broker gives an unacked task to another
# worker); 0 for receive, which stops no other way, 130 for a run cut short.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0 if side == "receive" else 130))

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.queue_declare("task_queue", durable=True, arguments={"x-queue-type": "quorum"})
tasks = [b"First task.", b"Second task..", b"Third task..."]

if side != "receive":
    channel.confirm_delivery()
    persistent = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
    for task in tasks:
        channel.basic_publish("", "task_queue", task, persistent, mandatory=True)
        print(f" [x] Sent {task.decode()!r}")


def on_task(channel, method, properties, body):
    time.sleep(body.count(b".") / 10)  # the work: a tenth of a second per dot
    print(f" [x] Done {body.decode()!r}")
    channel.basic_ack(method.delivery_tag)  # after the work: a worker that dies gives it back
    if side is None and body == tasks[-1]:  # ours, and the last: the queue is first in, first out
        channel.stop_consuming()


if side != "send":
    channel.basic_qos(prefetch_count=1)  # no new task for a worker until it acks its last
    channel.basic_consume("task_queue", on_task)
    if side == "receive":
        print(" [*] Waiting for messages. To exit press CTRL+C")
    channel.start_consuming()
connection.close()
