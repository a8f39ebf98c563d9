"""make mutants: break each promise of the helpers on purpose, and check that a test fails.

Each entry of tools/mutants.toml is a one-line change to common/ that breaks one promise
(acks after the callback, confirms, the resend deadline, ...). For each, in a scratch copy
of the repository: apply it, run only the tests named for it, and report

    killed    a test failed: the promise is guarded
    survived  every test passed: nothing guards the promise
    error     the run proves nothing (the change did not apply, a test skipped or could
              not start, or it took longer than TIME_LIMIT)

First, the same tests run on an unchanged copy and must all pass, so that a failure
means the change was caught. Exit 0 only if every mutant was killed.

    python tools/mutants.py [--jobs 2] [NAME ...]
"""

import argparse
import concurrent.futures
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree
from pathlib import Path

from localnode import LocalNode, installed

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "tools" / "mutants.toml"
TIME_LIMIT = 300  # seconds for one run of a mutant's tests, its own broker's start included
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", ".venv-*", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info", "build"
)


def load(names):
    mutants = tomllib.loads(MUTANTS.read_text())["mutant"]
    unknown = set(names) - {mutant["name"] for mutant in mutants}
    if unknown:
        sys.exit(f"error: no mutant named {', '.join(sorted(unknown))} in {MUTANTS.name}")
    return [mutant for mutant in mutants if not names or mutant["name"] in names]


def apply(copy, mutant):
    """Make the mutant's change in the copy; why it cannot, or None."""
    path = copy / mutant["file"]
    if not path.is_file():
        return f"there is no {mutant['file']}"
    text = path.read_text()
    found = text.count(mutant["find"])
    if found != 1:
        return f"{mutant['find']!r} stands {found} times in {mutant['file']}, not once"
    path.write_text(text.replace(mutant["find"], mutant["replace"]))
    return None


def run_tests(copy, tests, node):
    """Run the tests in the copy, on the node if one is given: (outcome, what happened),
    outcome "failed", "passed" or "error". The copy's common/ comes first on the path, for
    the scripts the tests start too: the one installed in the virtual environment, the
    repository's own, would hide it."""
    report = copy / "report.xml"
    environment = {**os.environ, "PYTHONPATH": str(copy)}
    if node:
        environment["THROWAWAY_NODE"] = node.describe()
    environment.pop("CI", None)  # a skip is counted below, not turned into a failure
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    try:
        run = subprocess.run(
            [*command, f"--junitxml={report}", *tests],
            cwd=copy,
            env=environment,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT,
        )
    except subprocess.TimeoutExpired:
        return "error", f"the tests took more than {TIME_LIMIT} s"
    if not report.exists():
        return "error", f"pytest exited {run.returncode} with no report: {run.stderr[-500:]}"
    suite = xml.etree.ElementTree.parse(report).getroot().find("testsuite")
    counts = {key: int(suite.get(key)) for key in ("tests", "failures", "errors", "skipped")}
    if counts["failures"]:
        failed = suite.find("testcase/failure/..")
        return "failed", f"{failed.get('name')} failed"
    if counts["errors"] or counts["skipped"] or not counts["tests"]:
        return "error", f"{counts}, pytest said: {run.stdout[-1500:]}"
    return "passed", f"{counts['tests']} passed"


def trial(mutant, scratch, node=None):
    """One mutant in a copy of its own: (verdict, why). A mutant with no `find` changes
    nothing: the baseline, whose tests must pass."""
    copy = Path(tempfile.mkdtemp(prefix="mutant-", dir=scratch))
    shutil.copytree(ROOT, copy, ignore=NOT_COPIED, dirs_exist_ok=True)
    changed = "find" in mutant
    problem = apply(copy, mutant) if changed else None
    if problem:
        return "error", problem
    outcome, why = run_tests(copy, mutant["tests"], node)
    if not changed:
        return ("ok" if outcome == "passed" else "error"), why
    return {"failed": "killed", "passed": "survived", "error": "error"}[outcome], why


def start_nodes(jobs):
    """One throwaway node per job, shared by the runs one after another: a node takes
    about 10 s to start, longer than most runs. None where none can start here (no
    rabbitmq-server, or AMQP_URL names a broker): each run finds its own then."""
    nodes = queue.SimpleQueue()
    if os.environ.get("AMQP_URL") or not installed():
        for _ in range(jobs):
            nodes.put(None)
        return nodes, []
    started = [LocalNode(wait=False) for _ in range(jobs)]
    for node in started:
        node.wait_started()
        nodes.put(node)
    return nodes, started


def on_a_node(nodes, mutant, scratch):
    node = nodes.get()  # free: the job before on it has ended
    try:
        return trial(mutant, scratch, node)
    finally:
        nodes.put(node)


def main():
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("names", nargs="*", metavar="NAME", help="only these mutants")
    options.add_argument("--jobs", type=int, default=2, help="mutants at once (default: 2)")
    args = options.parse_args()
    mutants = load(args.names)
    baseline = {"name": "(no change)", "tests": sorted({t for m in mutants for t in m["tests"]})}
    began = time.monotonic()
    verdicts = {}
    nodes, started = start_nodes(args.jobs)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="mutants-") as scratch,
            concurrent.futures.ThreadPoolExecutor(args.jobs) as pool,
        ):
            runs = {
                pool.submit(on_a_node, nodes, mutant, scratch): mutant["name"]
                for mutant in [baseline, *mutants]
            }
            for run in concurrent.futures.as_completed(runs):
                verdict, why = run.result()
                verdicts[runs[run]] = verdict
                print(f"{verdict:9} {runs[run]:32} {why}", flush=True)
    finally:
        for node in started:
            node.stop()
    killed = sum(verdict == "killed" for verdict in verdicts.values())
    print(f"{killed} of {len(mutants)} mutants killed in {time.monotonic() - began:.0f} s")
    if verdicts.pop(baseline["name"]) != "ok":
        sys.exit("error: the tests fail on the unchanged code, so no verdict above means anything")
    if killed < len(mutants):
        sys.exit("error: a promise of the helpers is not guarded by any test (see above)")


if __name__ == "__main__":
    main()
