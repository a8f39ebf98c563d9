"""RPC, the client: asks the server for Fibonacci numbers and waits for the answers.

Run:      python rpc/producer.py N [N ...] [--timeout 5] [--url URL]
          (with rpc/consumer.py, the server, running)
Observe:  all requests go out at once, each with its own correlation id; the
          answers are printed in the order asked. With no server running, it
          gives up after --timeout seconds with an error.
"""

import sys

from calls import RpcClient, RpcError

from common.cli import parser, run, seconds, whole_number

QUEUE = "rpc_queue"
MAX_N = 10000


class FibonacciClient(RpcClient):
    def __init__(self, url, timeout):
        super().__init__(url, QUEUE, timeout=timeout)

    def call(self, n):
        """fib(n), as an int."""
        return int(self.request(str(n)))

    def call_many(self, numbers):
        """fib(n) for each n, all asked at once; an RpcError where the server refused."""
        replies = self.request_many([str(n) for n in numbers])
        return [r if isinstance(r, RpcError) else int(r) for r in replies]


def main(argv=None):
    options = parser(__doc__)
    options.add_argument("n", nargs="+", type=whole_number(0, MAX_N), metavar="N")
    options.add_argument(
        "--timeout", type=seconds, default=5.0, help="seconds to wait for all replies (default: 5)"
    )
    args = options.parse_args(argv)
    with FibonacciClient(args.url, args.timeout) as client:
        for n in args.n:
            print(f" [x] Requesting fib({n})")
        results = client.call_many(args.n)
    for n, result in zip(args.n, results, strict=True):
        if isinstance(result, RpcError):
            print(f"error: fib({n}): the server refused: {result}", file=sys.stderr)
        else:
            print(f" [.] Got fib({n}) = {result}")
    if any(isinstance(result, RpcError) for result in results):
        sys.exit(1)


if __name__ == "__main__":
    run(main)
