"""Basic queue, the producer: sends messages to one named queue.

Run:      python basic/producer.py [-n 5] [--url URL]
Observe:  "<body> sent" per message, once the broker has confirmed it. With
          no consumer running the messages wait in the queue:
          `rabbitmqctl list_queues` shows "basic 5".
"""

from datetime import datetime

from common import Queue
from common.cli import count, parser, run

QUEUE = "basic"


class Producer(Queue):
    def __init__(self, url):
        super().__init__(url, QUEUE)


def main(argv=None):
    options = parser(__doc__)
    options.add_argument("-n", type=count, default=5, help="how many messages (default: 5)")
    args = options.parse_args(argv)
    now = datetime.now()
    with Producer(args.url) as producer:
        for i in range(args.n):
            body = f"{i} {now} - Basic - Hello World"
            if producer.send(body):
                print(f"{body} sent")


if __name__ == "__main__":
    run(main)
