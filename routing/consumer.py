"""Routing, a consumer: receives the messages sent with one of its keys.

Run:      python routing/consumer.py KEY [KEY ...] [--url URL]   (Ctrl-C to stop)
Observe:  `consumer.py blue` receives what `producer.py blue` sends and
          nothing else; `consumer.py red green` receives both colours.
"""

from common import Exchange
from common.cli import parser, routing_key, run

EXCHANGE = "routing"
EXCHANGE_TYPE = "direct"
QUEUE = ""  # "": a queue of our own, named by the broker, exclusive to this connection


class Consumer(Exchange):
    def __init__(self, url, keys, **options):
        super().__init__(url, EXCHANGE, EXCHANGE_TYPE, queue=QUEUE, **options)
        self.bind(*keys)  # one binding per key: a direct exchange matches keys exactly

    def callback(self, body):
        print(f"{body} received")


def main(argv=None):
    options = parser(__doc__, consumer=True)
    options.add_argument("keys", nargs="+", type=routing_key, metavar="KEY", help="keys to bind")
    args = options.parse_args(argv)
    with Consumer(args.url, args.keys, retry_for=args.retry) as consumer:
        consumer.receive()


if __name__ == "__main__":
    run(main, consumer=True)
