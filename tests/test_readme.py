"""README.rst shows exactly the code the files hold, and output of the shape they print."""

import re
import shlex

import docutils.core
import pytest
from readme import README, ROOT, blocks, shown_files, synced

TEXT = README.read_text()
TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"
WAITING = " [*] Waiting for messages. To exit press CTRL+C"
PATTERN_NAME = {
    "basic": "Basic",
    "workers": "Workers",
    "pubsub": "Pub/Sub",
    "routing": "Routing",
    "topics": "Topics",
}
KEYED = {"routing", "topics"}  # their messages' text is the routing key
DEFAULT_COUNT = {"basic": 5, "workers": 15, "pubsub": 5, "routing": 5, "topics": 5}


def script_runs():
    """(folder, script, arguments, output lines) for each console block that runs a script."""
    for language, content in blocks(TEXT):
        lines = content.splitlines()
        command = re.fullmatch(r"\$ python (\w+)/(producer|consumer)\.py(.*)", lines[0])
        more_commands = any(line.startswith("$ ") for line in lines[1:])
        if language == "console" and command and len(lines) > 1 and not more_commands:
            folder, script, arguments = command.groups()
            yield folder, script, shlex.split(arguments), lines[1:]


@pytest.mark.parametrize(("path", "shown"), shown_files(TEXT), ids=lambda v: v[:24])
def test_the_code_shown_is_the_code_in_the_file(path, shown):
    assert shown == (ROOT / path).read_text().strip()


def test_every_pattern_file_is_shown():
    shown = {path for path, _ in shown_files(TEXT)}
    pattern_files = {
        f"{folder}/{script}.py" for folder in PATTERN_NAME for script in ("producer", "consumer")
    }
    assert pattern_files <= shown


def test_make_readme_would_change_nothing():
    assert synced(TEXT) == TEXT


@pytest.mark.parametrize(
    ("folder", "script", "arguments", "lines"),
    [run for run in script_runs() if run[0] != "rpc"],
    ids=lambda v: str(v)[:30],
)
def test_the_output_shown_is_what_that_command_prints(folder, script, arguments, lines):
    positional = [
        a
        for i, a in enumerate(arguments)
        if not a.startswith("-") and (i == 0 or arguments[i - 1] != "-n")
    ]
    message = rf"(\d+) {TIMESTAMP} - {re.escape(PATTERN_NAME[folder])} - (.+)"
    key = positional[0] if folder in KEYED and script == "producer" else ""
    count = (
        int(arguments[arguments.index("-n") + 1]) if "-n" in arguments else DEFAULT_COUNT[folder]
    )
    if lines[0].startswith("error: "):  # the example of a broker that does not answer
        assert len(lines) == 1 and "secret" not in lines[0]
    elif lines[0].startswith("warning: unroutable"):  # a producer whose messages no queue took
        assert len(lines) == count
        assert all(f"routing key '{key}'" in line for line in lines)
    elif script == "producer":
        numbers = [re.fullmatch(f"{message} sent", line) for line in lines]
        assert all(numbers) and {n.group(2) for n in numbers} == {key or "Hello World"}, lines
        assert [int(n.group(1)) for n in numbers] == list(range(count))
    else:  # a consumer
        assert lines[0] == WAITING
        received = [re.fullmatch(f"{message} received", line) for line in lines[1:]]
        assert all(received), lines
        if folder == "routing":
            assert {r.group(2) for r in received} <= set(positional)


def rpc_runs():
    return [run for run in script_runs() if run[0] == "rpc"]


@pytest.mark.parametrize(("folder", "script", "arguments", "lines"), rpc_runs(), ids=str)
def test_the_rpc_output_shown_is_what_that_command_prints(folder, script, arguments, lines):
    if script == "producer":
        timeout = arguments[arguments.index("--timeout") + 1] if "--timeout" in arguments else "5"
        numbers = [int(a) for a in arguments if a.isdigit() and a != timeout]
        assert lines[: len(numbers)] == [f" [x] Requesting fib({n})" for n in numbers]
        rest = lines[len(numbers) :]
        if rest[0].startswith("error: "):
            assert rest == [f"error: no reply within {timeout} s: the server may not be running"]
        else:
            assert rest == [f" [.] Got fib({n}) = {fib(n)}" for n in numbers]
    else:
        assert lines[0] == " [x] Awaiting RPC requests"
        assert all(re.fullmatch(r" \[\.\] fib\(\d+\)", line) for line in lines[1:]), lines


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_the_readme_renders_without_warnings():
    docutils.core.publish_doctree(TEXT, settings_overrides={"halt_level": 2, "report_level": 2})
