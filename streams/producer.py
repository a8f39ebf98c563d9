"""Streams, the producer: appends messages to a stream, which keeps them for every reader.

Run:      python streams/producer.py [-n 5] [--url URL]
Observe:  "<body> sent" per message, once the broker has confirmed it. Unlike a
          queue's, the messages stay after they are read: start any number of
          consumers, now or tomorrow, with --offset first, and each reads them all.
"""

from datetime import datetime

from stream import Stream  # streams/stream.py, beside this file

from common.cli import count, parser, run

STREAM = "events"
RETENTION = {  # checked as each segment fills: the oldest whole segments go
    "x-max-age": "7D",
    "x-max-length-bytes": 1_000_000_000,
    "x-stream-max-segment-size-bytes": 100_000_000,
}


class Producer(Stream):
    def __init__(self, url):
        super().__init__(url, STREAM, RETENTION)


def main(argv=None):
    options = parser(__doc__)
    options.add_argument("-n", type=count, default=5, help="how many messages (default: 5)")
    args = options.parse_args(argv)
    now = datetime.now()
    with Producer(args.url) as producer:
        for i in range(args.n):
            body = f"{i} {now} - Streams - Hello World"
            if producer.send(body):
                print(f"{body} sent")


if __name__ == "__main__":
    run(main)
