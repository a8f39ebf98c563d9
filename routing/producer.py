"""Routing, the producer: publishes to a direct exchange with one routing key.

Run:      python routing/producer.py KEY [-n 5] [--url URL]   (try blue, red, green)
Observe:  "<body> sent" per message: only the consumers that bound KEY
          receive them. A key nobody bound is reported "unroutable" on stderr.
"""

from datetime import datetime

from common import Exchange
from common.cli import count, parser, routing_key, run

EXCHANGE = "routing"
EXCHANGE_TYPE = "direct"


class Producer(Exchange):
    def __init__(self, url):
        super().__init__(url, EXCHANGE, EXCHANGE_TYPE)


def main(argv=None):
    options = parser(__doc__)
    options.add_argument(
        "key", type=routing_key, metavar="KEY", help="the routing key, such as blue"
    )
    options.add_argument("-n", type=count, default=5, help="how many messages (default: 5)")
    args = options.parse_args(argv)
    now = datetime.now()
    with Producer(args.url) as producer:
        for i in range(args.n):
            body = f"{i} {now} - Routing - {args.key}"
            if producer.send(body, routing_key=args.key):
                print(f"{body} sent")


if __name__ == "__main__":
    run(main)
