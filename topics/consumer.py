"""Topics, a consumer: receives the messages whose routing key matches a pattern.

Run:      python topics/consumer.py BINDING_KEY [BINDING_KEY ...] [--url URL]
          (try "*.orange.*", "*.*.rabbit" "lazy.#", or "#"; Ctrl-C to stop)
Observe:  in a binding key "*" stands for exactly one word and "#" for zero
          or more, so "lazy.#" receives "lazy" and "lazy.brown.fox". A
          message that matches several of our bindings arrives once.
"""

import argparse

from common import Exchange
from common.cli import parser, routing_key, run

EXCHANGE = "topics"
EXCHANGE_TYPE = "topic"
QUEUE = ""  # "": a queue of our own, named by the broker, exclusive to this connection


class Consumer(Exchange):
    def __init__(self, url, binding_keys, **options):
        super().__init__(url, EXCHANGE, EXCHANGE_TYPE, queue=QUEUE, **options)
        self.bind(*binding_keys)

    def callback(self, body):
        print(f"{body} received")


def binding_key(text):
    """A binding key, on the command line: RabbitMQ 4.3.5 and later refuse more than two
    "#" in one, older versions take them; refused here on every version, as 4.3 says."""
    if (wildcards := routing_key(text).split(".").count("#")) > 2:
        raise argparse.ArgumentTypeError(
            f"a binding key uses at most 2 '#' wildcards (RabbitMQ 4.3.5 and later refuse "
            f"more), this one {wildcards}"
        )
    return text


def main(argv=None):
    options = parser(__doc__, consumer=True)
    options.add_argument(
        "keys", nargs="+", type=binding_key, metavar="BINDING_KEY", help="patterns to bind"
    )
    args = options.parse_args(argv)
    with Consumer(args.url, args.keys, retry_for=args.retry) as consumer:
        consumer.receive()


if __name__ == "__main__":
    run(main, consumer=True)
