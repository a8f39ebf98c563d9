"""Basic, in bare pika: the calls basic/producer.py and basic/consumer.py make.

Run:      python docs/pika/basic.py
Observe:  the message is sent, confirmed, then received and acknowledged (after
          any that waited in the queue before it).
"""

import os

import pika

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
# Durable and quorum, as RabbitMQ's tutorials declare it: it outlives a restart.
channel.queue_declare("basic", durable=True, arguments={"x-queue-type": "quorum"})
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
    if body == b"Hello World":  # ours: earlier messages may wait before it
        channel.stop_consuming()


channel.basic_qos(prefetch_count=10)  # at most 10 unacknowledged messages on their way
channel.basic_consume("basic", on_message)  # auto_ack=False: we acknowledge ourselves
channel.start_consuming()
connection.close()
