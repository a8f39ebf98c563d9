"""Publisher confirms, the producer: three ways to know the broker has every message.

Run:      python confirms/producer.py [--strategy each|batch|async|all] [-n 1000]
          [--batch 100] [--url URL]
Observe:  one line per strategy: how many the broker confirmed, in how long, and
          how many it refused (nacked) or returned, or were sent again after a
          lost connection; "<body> sent" per message too when -n is 20 or less.
          "each" waits for every confirm; "batch" for a batch's; "async" lets up
          to 1000 wait at once: compare their rates with --strategy all. Restart
          the broker during a run: what was not confirmed is sent again.
"""

from datetime import datetime

from bulk import publish_many  # confirms/bulk.py, beside this file

from common import Queue
from common.cli import parser, run, whole_number

QUEUE = "confirms"
WINDOW = 1000  # "async": at most this many messages unconfirmed at a time
SHOWN = 20  # up to this many messages, a line for each
MOST = 10_000_000  # messages in one run: every body is made before the first is sent
STRATEGIES = ("each", "batch", "async")


def publish(url, strategy, n, batch):
    """Publish n numbered messages with the strategy; the summary line."""
    window = {"each": 1, "batch": batch, "async": WINDOW}[strategy]
    now = datetime.now()
    bodies = [f"{i} {now} - Confirms - {strategy} of {n}" for i in range(n)]
    shown = (lambda i: print(f"{bodies[i]} sent")) if n <= SHOWN else None
    done = publish_many(
        url, QUEUE, bodies, window=window, batch=strategy == "batch", on_confirmed=shown
    )
    return (
        f"{strategy}: {done.confirmed} confirmed in {done.seconds:.2f} s "
        f"({done.confirmed / max(done.seconds, 1e-9):,.0f} msg/s); {done.nacked} nacked, "
        f"{done.returned} returned, {done.resent} sent again"
    )


def main(argv=None):
    options = parser(__doc__)
    options.add_argument(
        "--strategy", choices=[*STRATEGIES, "all"], default="async", help="(default: async)"
    )
    options.add_argument(
        "-n", type=whole_number(1, MOST), default=1000, help="how many messages (default: 1000)"
    )
    options.add_argument(
        "--batch",
        type=whole_number(1, MOST),
        default=100,
        metavar="SIZE",
        help="batch size (default: 100)",
    )
    args = options.parse_args(argv)
    if args.batch > args.n and args.strategy in ("batch", "all"):
        options.error(f"--batch {args.batch} is more than the {args.n} messages of -n")
    with Queue(args.url, QUEUE):  # declared here, as every script declares what it uses
        pass
    for strategy in STRATEGIES if args.strategy == "all" else [args.strategy]:
        print(publish(args.url, strategy, args.n, args.batch))


if __name__ == "__main__":
    run(main)
