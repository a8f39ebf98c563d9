"""RPC, the server: answers requests for Fibonacci numbers.

Run:      python rpc/consumer.py [--url URL]   (one or more; Ctrl-C to stop)
Observe:  " [.] fib(N)" per request it answers. Several servers share the
          requests; one that is not a whole number from 0 to 10000 gets an
          error reply, and the server goes on serving.
"""

import re

from calls import RpcServer

from common.cli import parser, run

QUEUE = "rpc_queue"
PREFETCH = 1  # one request at a time, so an idle server takes the next one
MAX_N = 10000


def fib(n):
    a, b = 0, 1
    for _ in range(n):  # iterative: fib(10000) in about a millisecond
        a, b = b, a + b
    return a


class FibonacciServer(RpcServer):
    def __init__(self, url, **options):
        super().__init__(url, QUEUE, prefetch=PREFETCH, **options)

    def respond(self, body):
        text = body.decode()  # not UTF-8: UnicodeDecodeError, a ValueError, an error reply
        if not re.fullmatch("[0-9]+", text) or int(text) > MAX_N:
            print(f" [!] refused {text[:40]!r}")
            raise ValueError(f"expected a whole number from 0 to {MAX_N}, got {text[:40]!r}")
        print(f" [.] fib({text})")
        return str(fib(int(text)))


def main(argv=None):
    args = parser(__doc__, consumer=True).parse_args(argv)
    with FibonacciServer(args.url, retry_for=args.retry) as server:
        server.receive()


if __name__ == "__main__":
    run(main, consumer=True)
