"""Work queues, a worker: takes one task at a time and works on it.

Run:      python workers/consumer.py [--delay 1.0] [--url URL]   in two or
          three terminals (Ctrl-C to stop)
Observe:  the tasks are shared between the workers, each task received by
          exactly one; a slow worker gets fewer; a worker killed in the middle
          of a task loses nothing: its task goes to another worker.
"""

import time

from common import Queue
from common.cli import parser, run, seconds
from common.consuming import DONE

QUEUE = "task_queue"
PREFETCH = 1  # fair dispatch: no second task for a worker until it acks the first


class Worker(Queue):
    def __init__(self, url, delay, **options):
        super().__init__(url, QUEUE, prefetch=PREFETCH, **options)
        self.delay = delay

    def callback(self, body):
        print(f"{body} received")
        time.sleep(self.delay)  # the simulated work; Queue acks only after it
        print(DONE)


def main(argv=None):
    options = parser(__doc__, consumer=True)
    options.add_argument(
        "--delay",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="seconds of work per task (default: 1.0)",
    )
    args = options.parse_args(argv)
    with Worker(args.url, args.delay, retry_for=args.retry) as worker:
        worker.receive()


if __name__ == "__main__":
    run(main, consumer=True)
