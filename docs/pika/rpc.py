"""RPC, in bare pika: a request with reply_to and correlation_id, and its answer.

Run:      python docs/pika/rpc.py serve   (in one terminal; Ctrl-C stops it)
          python docs/pika/rpc.py call    (in another)
          python docs/pika/rpc.py         (or both in one run, which ends by itself)
Observe:  the server answers fib(30) to the reply-to address; the client keeps
          the reply whose correlation id is the one it sent.
"""

import argparse
import os
import signal
import sys
import uuid

import pika

parser = argparse.ArgumentParser(description="RPC, in bare pika.")
parser.add_argument("side", nargs="?", choices=["serve", "call"], help="default: both")
side = parser.parse_args().side  # None: both, in one run
# Ctrl-C: out at once, with no traceback; 0 for serve, which stops no other way, 130 for
# a call cut short.
signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0 if side == "serve" else 130))

url = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")
connection = pika.BlockingConnection(pika.URLParameters(url))
server, client = connection.channel(), connection.channel()  # as two programs would have
# Both sides declare it, alike: a request sent before any server waits there for one.
server.queue_declare("rpc_queue", durable=True, arguments={"x-queue-type": "quorum"})


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def on_request(channel, method, properties, body):  # the server
    print(f" [.] fib({body.decode()})")
    answer = str(fib(int(body))).encode()
    reply = pika.BasicProperties(correlation_id=properties.correlation_id)
    channel.basic_publish("", properties.reply_to, answer, reply)
    channel.basic_ack(method.delivery_tag)


if side != "call":
    server.basic_qos(prefetch_count=1)
    server.basic_consume("rpc_queue", on_request)
if side == "serve":
    print(" [x] Awaiting RPC requests")
    server.start_consuming()  # until Ctrl-C: what follows is the client's

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
client.start_consuming()  # until our reply (with no argument, the server answers it here)
connection.close()
