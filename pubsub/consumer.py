"""Publish/subscribe, a subscriber: receives every message of a fanout exchange.

Run:      python pubsub/consumer.py [--url URL]   in two or three terminals
          (Ctrl-C to stop)
Observe:  every subscriber receives every message, in order. Each has its
          own queue, named by the broker, which goes away when it stops.
"""

from common import Exchange
from common.cli import parser, run

EXCHANGE = "pubsub"
EXCHANGE_TYPE = "fanout"
QUEUE = ""  # "": a queue of our own, named by the broker, exclusive to this connection


class Consumer(Exchange):
    def __init__(self, url, **options):
        super().__init__(url, EXCHANGE, EXCHANGE_TYPE, queue=QUEUE, **options)
        self.bind()  # a fanout ignores keys: one binding is all it takes

    def callback(self, body):
        print(f"{body} received")


def main(argv=None):
    args = parser(__doc__, consumer=True).parse_args(argv)
    with Consumer(args.url, retry_for=args.retry) as consumer:
        consumer.receive()


if __name__ == "__main__":
    run(main, consumer=True)
