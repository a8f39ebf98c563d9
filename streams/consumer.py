"""Streams, the consumer: reads a stream from an offset, and can resume where it stopped.

Run:      python streams/consumer.py [--offset first|last|next|N|TIME]
          [--resume NAME] [--url URL]      (Ctrl-C to stop)
Observe:  "<offset> <body> received" per message. Every consumer gets every
          message: one started late with --offset first reads them all, from 0.
          With --resume NAME, the file NAME.offset keeps the last offset handled,
          and the next run starts after it (at most one message comes again).
"""

from stream import Stream, offset, resume_name  # streams/stream.py, beside this file

from common.cli import parser, run

STREAM = "events"
RETENTION = {  # as the producer declares it: the broker refuses any other
    "x-max-age": "7D",
    "x-max-length-bytes": 1_000_000_000,
    "x-stream-max-segment-size-bytes": 100_000_000,
}
PREFETCH = 100  # a stream requires one: each ack lets the broker send another


class Consumer(Stream):
    def __init__(self, url, start, resume, **options):
        super().__init__(
            url, STREAM, RETENTION, start=start, resume=resume, prefetch=PREFETCH, **options
        )

    def callback(self, offset, body):
        print(f"{offset} {body} received")


def main(argv=None):
    options = parser(__doc__, consumer=True)
    options.add_argument(
        "--offset",
        type=offset,
        default="next",
        metavar="first|last|next|N|TIME",
        help="where to start: the oldest message kept, the last chunk written, what "
        "comes from now on, an offset, an ISO time (2026-12-06T09:30) or a span ago "
        "(30s, 10m, 2h, 1d) (default: next)",
    )
    options.add_argument(
        "--resume",
        type=resume_name,
        metavar="NAME",
        help="keep the offset of the last message handled in NAME.offset, here, and "
        "start after it next time (the first time: at --offset)",
    )
    args = options.parse_args(argv)
    with Consumer(args.url, args.offset, args.resume, retry_for=args.retry) as consumer:
        if consumer.last is not None:
            print(f" [*] Resuming after offset {consumer.last} (kept in {consumer.store})")
        consumer.receive()


if __name__ == "__main__":
    run(main, consumer=True)
