"""Publish/subscribe, the producer: publishes to a fanout exchange.

Run:      python pubsub/producer.py [-n 5] [--url URL]
Observe:  "<body> sent" per message: every running consumer receives all of
          them. With no consumer running, each message is reported
          "unroutable" on stderr: a fanout keeps nothing for later.
"""

from datetime import datetime

from common import Exchange
from common.cli import count, parser, run

EXCHANGE = "pubsub"
EXCHANGE_TYPE = "fanout"


class Producer(Exchange):
    def __init__(self, url):
        super().__init__(url, EXCHANGE, EXCHANGE_TYPE)


def main(argv=None):
    options = parser(__doc__)
    options.add_argument("-n", type=count, default=5, help="how many messages (default: 5)")
    args = options.parse_args(argv)
    now = datetime.now()
    with Producer(args.url) as producer:
        for i in range(args.n):
            body = f"{i} {now} - Pub/Sub - Hello World"
            if producer.send(body):
                print(f"{body} sent")


if __name__ == "__main__":
    run(main)
