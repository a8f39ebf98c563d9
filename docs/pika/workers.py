"""Workers, in bare pika: fair dispatch, and an acknowledgement after the work.

Run:      python docs/pika/workers.py    (then a second one beside it, for two workers)
Observe:  three tasks, each acknowledged only once it is done; with two workers
          running, each takes the next task as soon as it is free.
"""

import os
import time

import pika

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.queue_declare("task_queue", durable=True, arguments={"x-queue-type": "quorum"})
channel.confirm_delivery()
persistent = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)
tasks = [b"First task.", b"Second task..", b"Third task..."]
for task in tasks:
    channel.basic_publish("", "task_queue", task, persistent, mandatory=True)
    print(f" [x] Sent {task.decode()!r}")


def on_task(channel, method, properties, body):
    time.sleep(body.count(b".") / 10)  # the work: a tenth of a second per dot
    print(f" [x] Done {body.decode()!r}")
    channel.basic_ack(method.delivery_tag)  # after the work: a worker that dies gives it back
    if body == tasks[-1]:  # ours, and the last: the queue is first in, first out
        channel.stop_consuming()


channel.basic_qos(prefetch_count=1)  # no new task for a worker until it acks its last
channel.basic_consume("task_queue", on_task)
channel.start_consuming()
connection.close()
