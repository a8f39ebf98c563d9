"""Work queues, the producer: sends tasks that several workers share.

Run:      python workers/producer.py [-n 15] [--url URL]
Observe:  "<body> sent" per task, once the broker has confirmed it; each
          task then goes to exactly one of the running workers.
"""

from datetime import datetime

from common import Queue
from common.cli import count, parser, run

QUEUE = "task_queue"


class Producer(Queue):
    def __init__(self, url):
        super().__init__(url, QUEUE)


def main(argv=None):
    options = parser(__doc__)
    options.add_argument("-n", type=count, default=15, help="how many tasks (default: 15)")
    args = options.parse_args(argv)
    now = datetime.now()
    with Producer(args.url) as producer:
        for i in range(args.n):
            body = f"{i} {now} - Workers - Hello World"
            if producer.send(body):
                print(f"{body} sent")


if __name__ == "__main__":
    run(main)
