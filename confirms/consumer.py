"""Publisher confirms, the consumer: counts what arrives, by sequence number.

Run:      python confirms/consumer.py [--url URL]      (Ctrl-C to stop)
Observe:  once the queue has been quiet for a second, one line per producer
          run with news: "async of 1000: 1000 received: none missing, 0
          twice", or which are missing (on Ctrl-C too, if any came since). A
          message the producer sent again after a lost connection may arrive
          twice: at least once, never lost. "<body> received" per message too
          when the run was of 20 or less.
"""

import collections
import itertools
import os
import sys
import threading
import time

from common import Queue
from common.cli import parser, run

QUEUE = "confirms"
PREFETCH = 100  # messages come fast here: let many be on their way
QUIET = 1.0  # seconds with no message before the counts are printed
SHOWN = 20  # runs of up to this many messages: a line for each
MOST = 10_000_000  # messages in a run, as the producer allows


class Counter(Queue):
    def __init__(self, url, **options):
        super().__init__(url, QUEUE, prefetch=PREFETCH, **options)
        self.runs: dict[str, collections.Counter] = {}  # run -> how often each number came
        self.changed: set[str] = set()  # runs with news since the last counts printed
        self.lock, self.last = threading.Lock(), 0.0  # time.monotonic() of the last message
        threading.Thread(target=self.watch, daemon=True).start()

    def callback(self, body):
        number, _, run = body.partition(" ")  # "17 <its run's time> - Confirms - async of 1000"
        n = run.rpartition(" ")[2]
        if not (numeral(number) and numeral(n) and int(number) < int(n) <= MOST):
            print(f"{body} received (not a numbered message)")
            return
        if int(n) <= SHOWN:
            print(f"{body} received")
        with self.lock:
            self.runs.setdefault(run, collections.Counter())[int(number)] += 1
            self.changed.add(run)
            self.last = time.monotonic()

    def watch(self):
        """Print the counts once the queue has been quiet for QUIET seconds."""
        while True:
            time.sleep(QUIET / 5)
            try:
                self.report(quiet_for=QUIET)
            except BrokenPipeError:  # whoever read our output is gone (`consumer.py | head`)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                self.stop()
                return

    def report(self, quiet_for=0.0):
        """Print the counts of each run with news since they were last printed, once no
        message came for quiet_for seconds: how many arrived, which are missing, how many
        twice."""
        with self.lock:
            if time.monotonic() - self.last < quiet_for:
                return
            for run in sorted(self.changed):
                seen, n = self.runs[run], int(run.rpartition(" ")[2])
                missing = n - len(seen)  # every number seen is below n
                first = itertools.islice((i for i in range(n) if i not in seen), 10)
                gaps = f"{missing} missing ({', '.join(map(str, first))}"
                gaps += ", ...)" if missing > 10 else ")"
                twice = sum(1 for times in seen.values() if times > 1)
                label = run.partition(" - Confirms - ")[2]
                print(
                    f"{label}: {len(seen)} received: {gaps if missing else 'none missing'}, "
                    f"{twice} twice"
                )
            self.changed.clear()


def numeral(text):
    return text.isascii() and text.isdecimal()


def main(argv=None):
    args = parser(__doc__, consumer=True).parse_args(argv)
    with Counter(args.url, retry_for=args.retry) as counter:
        try:
            counter.receive()
        finally:
            counter.report()  # Ctrl-C: what came since the counts were last printed


if __name__ == "__main__":
    run(main, consumer=True)
