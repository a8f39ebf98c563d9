"""The command-line contract: usage errors exit 2, broker problems one error: line and exit 1."""

import os
import re
import socket
import subprocess
import sys

import pytest
from broker import free_port
from processes import ROOT, Script, load

# Every script, with the arguments it cannot do without.
REQUIRED = {
    "basic/producer.py": [],
    "basic/consumer.py": [],
    "workers/producer.py": [],
    "workers/consumer.py": [],
    "pubsub/producer.py": [],
    "pubsub/consumer.py": [],
    "routing/producer.py": ["blue"],
    "routing/consumer.py": ["blue", "red"],
    "topics/producer.py": ["quick.orange.rabbit"],
    "topics/consumer.py": ["*.orange.*", "lazy.#"],
    "rpc/producer.py": ["30"],
    "rpc/consumer.py": [],
    "confirms/producer.py": [],
    "confirms/consumer.py": [],
    "streams/producer.py": [],
    "streams/consumer.py": [],
}
SCRIPTS = list(REQUIRED)
PRODUCERS = [s for s in SCRIPTS if s.endswith("producer.py") and not s.startswith("rpc/")]
KEYED = [s for s in SCRIPTS if s.startswith(("routing/", "topics/"))]
PASSWORD = "s3cret-Pa55"
UNUSED = "amqp://guest:guest@127.0.0.1:1/%2F"  # never reached: usage is checked first

# Malformed in ways that must not make a usage message show the password.
MALFORMED_URLS = [
    f"amqp://guest:{PASSWORD}@localhost:notaport/",
    f"amqp://guest:{PASSWORD}",  # the host forgotten
    f"amqp:guest:{PASSWORD}@localhost/",
    f"guest:{PASSWORD}@localhost",
    f"amqp://guest:{PASSWORD}/x@localhost/",  # an unencoded / in the password
    f"amqp://guest:{PASSWORD}#x@localhost/",
    f"amqp://localhost/,guest:{PASSWORD}@localhost",  # the second of two has no scheme
    f"amqp://guest:12?{PASSWORD}@localhost/",  # "?" in a password starts the query
]
BAD_USAGE = (
    [(s, [*REQUIRED[s], "--no-such-option"]) for s in SCRIPTS]
    + [(s, [*REQUIRED[s], "--url", "http://localhost:5672/"]) for s in SCRIPTS]
    + [(s, [*REQUIRED[s], "--url", url]) for s in SCRIPTS for url in MALFORMED_URLS]
    + [(s, [*REQUIRED[s], "-n", n]) for s in PRODUCERS for n in ["abc", "0", "-1", "1.5", ""]]
    + [
        (s, [*REQUIRED[s], "extra"])
        for s in SCRIPTS
        if not s.endswith("consumer.py") or not REQUIRED[s]
    ]
    + [(s, []) for s in KEYED]  # the key is missing
    + [(s, ["k" * 256]) for s in KEYED]  # AMQP allows 255 bytes
    + [(s, [*REQUIRED[s], "k" * 200 + "é" * 28]) for s in KEYED if s.endswith("consumer.py")]
    + [("topics/consumer.py", [k]) for k in ["#.#.#", "a.#.b.#.c.#"]]  # 4.3.5 refuses
    + [("workers/consumer.py", ["--delay", d]) for d in ["abc", "-1", "nan", "inf", "1e10"]]
    + [(s, [*REQUIRED[s], "--retry", "1e308"]) for s in SCRIPTS if s.endswith("consumer.py")]
    + [("basic/producer.py", ["-n", "1" + "0" * 5000])]
    + [("rpc/producer.py", [n]) for n in ["abc", "-3", "10001", "1.5", "", "²"]]
    + [("rpc/producer.py", ["30", "--timeout", t]) for t in ["abc", "-1", "1e308", "1e9"]]
    + [("rpc/producer.py", [])]  # no N
)


def run(script, *args, url, env=None):
    process = Script(script, *args, url=url, env=env)
    process.wait()
    return process


def assert_no_traceback(process):
    assert not any("Traceback" in line for line in process.stderr), process.describe()


def main_of(script):
    """The script's main(), loaded as a module: its argument parsing runs in this process."""
    return load(ROOT / script, run_name="under_test")["main"]


@pytest.mark.parametrize(
    ("script", "args"), BAD_USAGE, ids=lambda v: " ".join(v)[:40] if isinstance(v, list) else v
)
def test_bad_usage_exits_2_with_a_message(script, args, capsys, monkeypatch):
    monkeypatch.setenv("AMQP_URL", UNUSED)
    with pytest.raises(SystemExit) as exit:
        main_of(script)(args)
    assert exit.value.code == 2
    output = capsys.readouterr()
    assert output.err.startswith("usage:") and output.out == ""
    assert PASSWORD not in output.err


@pytest.mark.parametrize("script", SCRIPTS)
def test_bad_usage_in_a_real_process_exits_2_without_a_traceback(script):
    process = run(script, *REQUIRED[script], "--no-such-option", url=UNUSED)
    assert process.process.returncode == 2, process.describe()
    assert process.stderr[0].startswith("usage:"), process.describe()
    assert_no_traceback(process)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_malformed_amqp_url_in_the_environment_is_a_usage_error(script):
    process = run(script, *REQUIRED[script], url=f"amqp://guest:{PASSWORD}@host:port:5672/")
    assert process.process.returncode == 2, process.describe()
    assert PASSWORD not in "\n".join(process.stderr)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_exits_0_and_shows_the_docstring(script, capsys):
    with pytest.raises(SystemExit) as exit:
        main_of(script)(["--help"])
    assert exit.value.code == 0
    shown = capsys.readouterr().out
    assert "Run:" in shown and "Observe:" in shown
    # Its arguments by the names its Run: line gives them (KEY, not key): no other name.
    usage = re.sub(r"\[[^][]*(\[[^][]*\][^][]*)*\]", "", shown.split("\n\n")[0])
    run_line = shown[shown.index("Run:") : shown.index("Observe:")]
    for positional in usage.split()[2:]:
        assert re.search(rf"\b{positional}\b", run_line), (positional, run_line)


def assert_one_error_line(process, *expected):
    assert process.process.returncode == 1, process.describe()
    assert len(process.stderr) == 1 and process.stderr[0].startswith("error: "), process.describe()
    for text in expected:
        assert text in process.stderr[0]
    assert PASSWORD not in "\n".join(process.stderr + process.stdout)
    assert process.stdout == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_no_broker_is_one_error_line_without_the_password(script):
    port = free_port()
    retry = ["--retry", "0"] if script.endswith("consumer.py") else []  # no waiting for it
    url = f"amqp://guest:{PASSWORD}@127.0.0.1:{port}/%2F"
    process = run(script, *REQUIRED[script], *retry, url=url)
    assert_one_error_line(process, f"127.0.0.1:{port}", "is RabbitMQ running")


def test_no_broker_at_any_of_several_urls_names_them_all_without_the_password():
    ports = [free_port(), free_port()]
    urls = [
        f"{scheme}://guest:{PASSWORD}@127.0.0.1:{port}/%2F"
        for scheme, port in zip(["amqp", "AMQP"], ports, strict=True)
    ]
    process = run("basic/producer.py", "--url", urls[0], "--url", urls[1], url=UNUSED)
    assert_one_error_line(process, *(f"127.0.0.1:{port}" for port in ports))


def test_url_given_twice_keeps_both_even_when_the_first_is_the_default(monkeypatch):
    from common.cli import DEFAULT_URL, parser

    monkeypatch.delenv("AMQP_URL", raising=False)
    options = parser("doc")
    assert options.parse_args([]).url == DEFAULT_URL
    twice = options.parse_args(["--url", DEFAULT_URL, "--url", "amqp://other"])
    assert twice.url == f"{DEFAULT_URL},amqp://other"


def test_a_comma_in_a_password_is_part_of_it_and_never_shown():
    from common.connection import broker_urls, without_password

    url = f"amqp://guest:{PASSWORD},x@host/"
    assert broker_urls(f"{url},amqps://h2/") == [url, "amqps://h2/"]
    assert without_password(f"{url},amqps://h2/") == "amqp://guest@host/, amqps://h2/"


def test_with_several_urls_the_first_broker_that_answers_is_used(amqp_url):
    nobody = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    producer = run("basic/producer.py", "-n", "3", "--url", nobody, "--url", amqp_url, url=UNUSED)
    assert producer.process.returncode == 0, producer.describe()
    consumer = Script("basic/consumer.py", url=f"{nobody},{amqp_url}")  # AMQP_URL: a list
    try:
        assert consumer.wait_ready().wait_received(3) == producer.sent()
    finally:
        consumer.kill()


def test_an_unknown_queue_type_is_one_error_line(amqp_url):
    process = run("workers/producer.py", url=amqp_url, env={"QUEUE_TYPE": "quorom"})
    assert_one_error_line(process, "'quorom'", "quorum or classic")


@pytest.mark.parametrize(
    "script", ["basic/producer.py", "workers/consumer.py", "topics/consumer.py"]
)
def test_a_wrong_password_is_one_error_line_without_it(script, amqp_url):
    url = amqp_url.replace("guest:guest@", f"guest:{PASSWORD}@")
    assert_one_error_line(run(script, *REQUIRED[script], url=url), "user name or password")


@pytest.mark.parametrize(
    "script", ["basic/consumer.py", "workers/producer.py", "pubsub/producer.py"]
)
def test_an_unknown_virtual_host_is_one_error_line(script, amqp_url):
    url = amqp_url.rsplit("/", 1)[0] + "/no-such-vhost"
    process = run(script, *REQUIRED[script], url=url)
    assert_one_error_line(process, "'no-such-vhost'", "virtual host")


def test_a_queue_declared_with_other_settings_names_the_queue_and_the_fix(amqp_url):
    import pika

    vhost = pika.URLParameters(amqp_url).virtual_host
    arguments = {"x-queue-type": "quorum", "x-max-length": 10}
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        connection.channel().queue_declare("basic", durable=True, arguments=arguments)
    assert_one_error_line(
        run("basic/producer.py", url=amqp_url),
        "PRECONDITION_FAILED",
        "declares the queue 'basic' with x-max-length none, but it has '10'",
        f"rabbitmqctl delete_queue -p {vhost} basic",
    )


def test_a_queue_of_another_type_says_which_queue_type_to_run_with(amqp_url):
    import pika

    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        connection.channel().queue_declare("task_queue", durable=True)  # classic
    quorum = run("workers/producer.py", url=amqp_url)
    assert_one_error_line(quorum, "'x-queue-type'", "run with QUEUE_TYPE=classic")
    assert run("workers/producer.py", url=amqp_url, env={"QUEUE_TYPE": "classic"}).wait() == 0


def test_an_exchange_of_another_type_names_it_and_the_fix(amqp_url):
    import pika

    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        connection.channel().exchange_declare("routing", "fanout", durable=True)
    assert_one_error_line(
        run("routing/producer.py", "blue", url=amqp_url),
        "declares the exchange 'routing' with type 'direct', but it has 'fanout'",
        "delete it",
    )


def test_a_host_name_that_cannot_be_one_is_one_error_line():
    """A label over 63 characters: refused before any look-up leaves the machine."""
    process = run("basic/producer.py", url=f"amqp://guest:{PASSWORD}@{'a' * 64}/")
    assert_one_error_line(process, "host name")


def test_a_port_that_answers_but_speaks_no_amqp_is_one_error_line():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        url = f"amqp://guest:{PASSWORD}@127.0.0.1:{port}/%2F?stack_timeout=1"
        process = run("basic/producer.py", url=url)
    assert_one_error_line(process, f"127.0.0.1:{port}")


def test_output_closed_early_is_no_traceback(amqp_url):
    producer = subprocess.run(
        f"{sys.executable} basic/producer.py -n 50 | head -1",
        shell=True,
        cwd=ROOT,
        env={**os.environ, "AMQP_URL": amqp_url},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert len(producer.stdout.splitlines()) == 1
    assert "Traceback" not in producer.stderr and "Exception" not in producer.stderr
