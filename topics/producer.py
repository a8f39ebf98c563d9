"""Topics, the producer: publishes to a topic exchange with a dotted routing key.

Run:      python topics/producer.py ROUTING_KEY [-n 5] [--url URL]
          (try quick.orange.rabbit, lazy.brown.fox, lazy)
Observe:  "<body> sent" per message: the consumers whose binding key matches
          ROUTING_KEY receive them. A key that matches no binding is
          reported "unroutable" on stderr.
"""

from datetime import datetime

from common import Exchange
from common.cli import count, parser, routing_key, run

EXCHANGE = "topics"
EXCHANGE_TYPE = "topic"


class Producer(Exchange):
    def __init__(self, url):
        super().__init__(url, EXCHANGE, EXCHANGE_TYPE)


def main(argv=None):
    options = parser(__doc__)
    options.add_argument("key", type=routing_key, metavar="ROUTING_KEY", help="words and dots")
    options.add_argument("-n", type=count, default=5, help="how many messages (default: 5)")
    args = options.parse_args(argv)
    now = datetime.now()
    with Producer(args.url) as producer:
        for i in range(args.n):
            body = f"{i} {now} - Topics - {args.key}"
            if producer.send(body, routing_key=args.key):
                print(f"{body} sent")


if __name__ == "__main__":
    run(main)
