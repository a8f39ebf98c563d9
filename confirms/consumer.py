"""Publisher confirms, the consumer: counts what arrives, by sequence number.

Run:      python confirms/consumer.py [--url URL]      (Ctrl-C to stop)
Observe:  once the queue has been quiet for a second, and on Ctrl-C, one line
          per producer run: "async of 1000: 1000 received: none missing, 0
          twice", or which are missing. A message the producer sent again after
          a lost connection may arrive twice: at least once, never lost.
          "<body> received" per message too when the run was of 20 or less.
"""

import collections
import threading
import time

from common import Queue
from common.cli import parser, run

QUEUE = "confirms"
PREFETCH = 100  # messages come fast here: let many be on their way
QUIET = 1.0  # seconds with no message before the counts are printed
SHOWN = 20  # runs of up to this many messages: a line for each


class Counter(Queue):
    def __init__(self, url, **options):
        super().__init__(url, QUEUE, prefetch=PREFETCH, **options)
        self.runs: dict[str, collections.Counter] = {}  # run -> how often each number came
        self.changed: set[str] = set()  # runs with news since the last counts printed
        self.lock, self.last = threading.Lock(), 0.0  # time.monotonic() of the last message
        threading.Thread(target=self.watch, daemon=True).start()

    def callback(self, body):
        number, _, run = body.partition(" ")  # "17 <its run's time> - Confirms - async of 1000"
        if not number.isdigit() or not run.rpartition(" ")[2].isdigit():
            print(f"{body} received (not a numbered message)")
            return
        if int(run.rpartition(" ")[2]) <= SHOWN:
            print(f"{body} received")
        with self.lock:
            self.runs.setdefault(run, collections.Counter())[int(number)] += 1
            self.changed.add(run)
            self.last = time.monotonic()

    def watch(self):
        """Print the counts once the queue has been quiet for QUIET seconds."""
        while True:
            time.sleep(QUIET / 5)
            if self.changed and time.monotonic() - self.last >= QUIET:
                self.report()

    def report(self):
        """Print the counts of each run with news: what arrived, what is missing."""
        with self.lock:
            for run in sorted(self.changed):
                seen, n = self.runs[run], int(run.rpartition(" ")[2])
                missing = [i for i in range(n) if i not in seen]
                twice = sum(1 for times in seen.values() if times > 1)
                gaps = f"{len(missing)} missing ({', '.join(map(str, missing[:10]))}"
                gaps += ", ...)" if len(missing) > 10 else ")"
                label = run.partition(" - Confirms - ")[2]
                print(
                    f"{label}: {len(seen)} received: {gaps if missing else 'none missing'}, "
                    f"{twice} twice"
                )
            self.changed.clear()


def main(argv=None):
    args = parser(__doc__, consumer=True).parse_args(argv)
    with Counter(args.url, retry_for=args.retry) as counter:
        try:
            counter.receive()
        finally:
            counter.report()  # Ctrl-C: what came so far


if __name__ == "__main__":
    run(main, consumer=True)
