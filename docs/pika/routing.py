"""Routing, in bare pika: a direct exchange delivers by the exact routing key.

Run:      python docs/pika/routing.py
Observe:  the queue bound to "red" and "green" gets those two, not "blue".
"""

import os

import pika

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.exchange_declare("routing", exchange_type="direct", durable=True)
queue = channel.queue_declare("", exclusive=True).method.queue
for key in ("red", "green"):
    channel.queue_bind(queue, "routing", routing_key=key)  # one binding per key
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
    if method.routing_key == "green":
        channel.stop_consuming()


channel.basic_consume(queue, on_message)
channel.start_consuming()
connection.close()
