import logging
import os
import urllib.parse

import pika
import pytest
from inprocess import Logged, broker_version
from pika.exceptions import NackError
from processes import Scripts
from throwaway import BrokerUnavailable, choose, describe, start_broker

from common.cli import LOGGERS


@pytest.fixture(scope="session")
def broker():
    """One throwaway broker for the whole run; never a skip: no broker is a failure."""
    try:
        started = start_broker()
    except BrokerUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    if started.ctl is None:  # a broker of the user's own (AMQP_URL): reached only remotely

        def not_offered(*args, **options):
            pytest.skip(
                f"needs rabbitmqctl on the broker's node, which a broker given by AMQP_URL "
                f"does not offer (rabbitmqctl {args[0]}); unset AMQP_URL to run it"
            )

        started.ctl = not_offered
    yield started
    started.stop()


@pytest.fixture
def restartable(broker):
    """The broker, for a test that restarts it: not one of the user's own (AMQP_URL)."""
    if not broker.can_restart:
        pytest.skip(f"the tests cannot restart this broker ({broker.kind}): unset AMQP_URL")
    return broker


@pytest.fixture
def amqp_url(broker):
    """A fresh virtual host per test, so no test sees another's queues or messages."""
    vhost = broker.add_vhost()
    yield broker.url(vhost)
    broker.delete_vhost(vhost)


@pytest.fixture
def start(amqp_url):
    """start("basic/consumer.py", *args): a running script, killed at the test's end."""
    scripts = Scripts(amqp_url)
    yield scripts.start
    scripts.kill()


def pytest_configure(config):
    """Where the throwaway broker comes from is decided once, before any test runs, and
    the xdist workers (started after this) inherit the decision through THROWAWAY."""
    if hasattr(config, "workerinput") or os.environ.get("AMQP_URL"):
        return
    if os.environ.get("THROWAWAY_NODE"):
        return
    try:
        path, why = choose()
    except BrokerUnavailable as error:
        raise pytest.UsageError(str(error)) from None
    os.environ["THROWAWAY"] = path
    config.broker_header = f"broker: {describe(path)}" + (
        f", not a container: {why}" if why else ""
    )


def pytest_report_header(config):
    if os.environ.get("AMQP_URL"):
        return "broker: AMQP_URL"
    return getattr(config, "broker_header", "broker: a throwaway one")


def pytest_sessionfinish(session, exitstatus):
    """In CI a skipped test is a failure: it proves nothing."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(
            f"CI: {len(skipped)} test(s) skipped; a skip fails the run here", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def report(record_property):
    """report(text): a line for the end of the run's summary, for what a test measured."""
    return lambda text: record_property("report", text)


def pytest_terminal_summary(terminalreporter):
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for test in reports
        if getattr(test, "when", None) == "call"
        for name, value in getattr(test, "user_properties", ())
        if name == "report"
    ]
    if lines:
        terminalreporter.section("measured")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(params=["classic", "quorum"])
def queue_type(request, monkeypatch):
    """Each queue type in turn, for the helpers here and for every script a test starts."""
    monkeypatch.setenv("QUEUE_TYPE", request.param)
    return request.param


@pytest.fixture
def logged():
    """What the helpers log during the test (inprocess.Logged), as a script shows it."""
    handler, loggers = Logged(), [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def consumer_timeout(broker, amqp_url):
    """A consumer_timeout of 3 s for the test's queues: on RabbitMQ 4.3 a policy of the
    test's virtual host. Before 4.3 a channel checks its deliveries only every
    channel_tick_interval (a minute), a node setting: so both are set on the node, at run
    time, and put back after (the tests run one at a time on each broker)."""
    vhost = urllib.parse.quote(pika.URLParameters(amqp_url).virtual_host, safe="")
    if broker_version(broker) >= (4, 3):
        policy = {"pattern": ".*", "definition": {"consumer-timeout": 3000}, "apply-to": "queues"}
        broker.api("PUT", f"/api/policies/{vhost}/timeout", policy)
        yield
        return
    settings = {"consumer_timeout": 3000, "channel_tick_interval": 1000}
    before = {name: broker.ctl("eval", f"application:get_env(rabbit, {name}).").strip()
              for name in settings}  # fmt: skip
    for name, value in settings.items():
        broker.ctl("eval", f"application:set_env(rabbit, {name}, {value}).")
    try:
        yield
    finally:
        for name, was in before.items():  # "undefined", or "{ok,N}"
            if was == "undefined":
                broker.ctl("eval", f"application:unset_env(rabbit, {name}).")
            else:
                broker.ctl("eval", f"application:set_env(rabbit, {name}, {was[4:-1]}).")


@pytest.fixture
def full_queue(amqp_url, queue_type):
    """A queue with a length limit and overflow "reject-publish", filled until the broker
    refuses (nacks) a message: it goes on refusing while it is full. Bare pika, so that
    the queue is full whatever the helpers do."""
    arguments = {"x-max-length": 1, "x-overflow": "reject-publish", "x-queue-type": queue_type}
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.queue_declare("bounded", durable=True, arguments=arguments)
        for _ in range(5):  # a quorum queue takes one message more than its limit
            try:
                channel.basic_publish("", "bounded", b"filler")
            except NackError:
                return "bounded"
    raise AssertionError("the broker never refused a message to a full queue")
