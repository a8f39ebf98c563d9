"""Publish/Subscribe, in bare pika: a fanout exchange, and a queue of one's own bound to it.

Run:      python docs/pika/pubsub.py
Observe:  the message published to the exchange reaches the queue bound to it.
"""

import os

import pika

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.exchange_declare("pubsub", exchange_type="fanout", durable=True)
# "": the broker names the queue; exclusive: it is ours alone, gone when we disconnect.
queue = channel.queue_declare("", exclusive=True).method.queue
channel.queue_bind(queue, "pubsub")  # fanout: every bound queue gets every message
channel.confirm_delivery()

channel.basic_publish("pubsub", routing_key="", body=b"Hello World", mandatory=True)
print(" [x] Sent 'Hello World' to every subscriber")


def on_message(channel, method, properties, body):
    print(f" [x] Received {body.decode()!r} in {queue}")
    channel.basic_ack(method.delivery_tag)
    channel.stop_consuming()


channel.basic_consume(queue, on_message)
channel.start_consuming()
connection.close()
