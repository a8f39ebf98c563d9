"""Topics, in bare pika: a topic exchange matches the routing key against patterns.

Run:      python docs/pika/topics.py
Observe:  *.orange.* matches one word each side of orange; lazy.# matches lazy
          and anything after it; quick.brown.fox matches neither.
"""

import os

import pika

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()
channel.exchange_declare("topics", exchange_type="topic", durable=True)
queue = channel.queue_declare("", exclusive=True).method.queue
for pattern in ("*.orange.*", "lazy.#"):  # *: exactly one word; #: zero or more
    channel.queue_bind(queue, "topics", routing_key=pattern)
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
    if method.routing_key == "lazy":
        channel.stop_consuming()


channel.basic_consume(queue, on_message)
channel.start_consuming()
connection.close()
