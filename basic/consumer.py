"""Basic queue, the consumer: receives the messages of one named queue.

Run:      python basic/consumer.py [--url URL]      (Ctrl-C to stop)
Observe:  "<body> received" per message, in the order they were sent,
          including those sent while no consumer was running.
"""

from common import Queue
from common.cli import parser, run

QUEUE = "basic"
PREFETCH = 10  # at most this many unacknowledged messages in flight to us


class Consumer(Queue):
    def __init__(self, url, **options):
        super().__init__(url, QUEUE, prefetch=PREFETCH, **options)

    def callback(self, body):
        print(f"{body} received")


def main(argv=None):
    args = parser(__doc__, consumer=True).parse_args(argv)
    with Consumer(args.url, retry_for=args.retry) as consumer:
        consumer.receive()


if __name__ == "__main__":
    run(main, consumer=True)
