"""RPC, in bare pika: a request with reply_to and correlation_id, and its answer.

Run:      python docs/pika/rpc.py
Observe:  the server answers fib(30) to the reply-to address; the client keeps
          the reply whose correlation id is the one it sent.
"""

import os
import uuid

import pika

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
server, client = connection.channel(), connection.channel()
server.queue_declare("rpc_queue", durable=True, arguments={"x-queue-type": "quorum"})


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def on_request(channel, method, properties, body):  # the server
    answer = str(fib(int(body))).encode()
    reply = pika.BasicProperties(correlation_id=properties.correlation_id)
    channel.basic_publish("", properties.reply_to, answer, reply)
    channel.basic_ack(method.delivery_tag)


server.basic_qos(prefetch_count=1)
server.basic_consume("rpc_queue", on_request)

call = str(uuid.uuid4())  # the client: this call's id, for its answer to carry back


def on_reply(channel, method, properties, body):
    if properties.correlation_id == call:  # a late reply to an older call: not ours
        print(f" [.] Got fib(30) = {body.decode()}")
        channel.stop_consuming()


# Direct reply-to: a pseudo-queue, consumed without acks before the request is sent.
client.basic_consume("amq.rabbitmq.reply-to", on_reply, auto_ack=True)
request = pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id=call)
client.basic_publish("", "rpc_queue", b"30", request)
print(" [x] Requesting fib(30)")
client.start_consuming()
connection.close()
