"""Workers: how well 1, 2 and 4 workers/consumer.py share tasks."""

import subprocess
import threading
import time

from processes import OUTPUT, ROOT, Script, wait_until

from benchmarks.shared import (
    DEADLINE,
    REPEATS,
    TASK_QUEUE,
    WORK,
    WORKER_COUNTS,
    BenchError,
    purge,
    stop,
)
from common.consuming import DONE


def measure_workers(url, n_workers, tasks):
    """tasks/s of n_workers running workers/consumer.py --delay WORK, sharing the tasks of
    workers/producer.py -n tasks: from the first task received to the last done, as the
    workers print them. The best of REPEATS batches, each done before the next is sent."""
    purge(url, TASK_QUEUE)  # nothing left from earlier runs
    lines = []  # (when, line) of every line any worker printed
    lock = threading.Lock()

    def record(script, line):
        with lock:
            lines.append((time.perf_counter(), line))
        with OUTPUT:
            OUTPUT.notify_all()  # so wait_until sees lines[] as it is now

    args = ["--delay", str(WORK), "--url", url]
    crew = [
        Script(ROOT / "workers" / "consumer.py", *args, url=url, echo=record)
        for _ in range(n_workers)
    ]
    rates = []
    try:
        for worker in crew:
            worker.wait_ready()
        for _ in range(REPEATS):
            with lock:
                start = len(lines)
            # Its "sent" lines go nowhere: reading them would load this process.
            producer = Script(
                ROOT / "workers" / "producer.py",
                *["-n", str(tasks), "--url", url],
                url=url,
                stdout=subprocess.DEVNULL,
            )
            if producer.wait(DEADLINE) != 0:
                raise BenchError(f"workers/producer.py failed:\n{producer.describe()}")

            def batch(start=start):
                with lock:
                    return lines[start:]

            def done(batch=batch):
                return sum(line == DONE for _, line in batch()) >= tasks

            wait_until(done, f"{tasks} tasks not done", *crew, timeout=DEADLINE + tasks * WORK)
            first = min(t for t, line in batch() if line.endswith(" received"))
            last = max(t for t, line in batch() if line == DONE)
            rates.append(tasks / (last - first))
    finally:
        for worker in crew:
            stop(worker)
    return max(rates)


def measure_all_workers(url, counts, report):
    """Workers' rates and efficiency: the rate over the most n workers could do, n / WORK.
    Each worker has the same number of tasks, so each run takes about as long."""
    results = {}
    for n in WORKER_COUNTS:
        rate = measure_workers(url, n, n * counts["tasks_per_worker"])
        results[f"workers_{n}_per_s"] = rate
        results[f"workers_efficiency_{n}"] = rate / (n / WORK)
        report(f"workers_{n}_per_s", rate)
        report(f"workers_efficiency_{n}", results[f"workers_efficiency_{n}"])
    return results
