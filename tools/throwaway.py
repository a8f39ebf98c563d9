"""Where the tests and the tools get their RabbitMQ: the choice, in one place.

The tests (start_broker), in this order:

0. ``THROWAWAY_NODE`` is set: the local node that a parent process started and
   described there (``make mutants`` starts one per job, not one per run).
1. ``AMQP_URL`` is set: that broker (broker.py). Its management API
   (``RABBITMQ_API_URL``, default ``http://<host>:15672``) makes the per-test virtual
   hosts; what needs rabbitmqctl or a restart of the broker is skipped, saying why.
2. Else a throwaway broker of our own (start_throwaway):

   - a container of ``RABBITMQ_IMAGE`` (default rabbitmq:4.3-management) when a Docker
     engine answers and has that image or can pull it (container.py);
   - else a local node of this machine's rabbitmq-server (localnode.py), after a
     one-line notice that says why not a container;
   - else an error that says how to get a broker.

   ``THROWAWAY=container`` or ``THROWAWAY=local`` forces one of the two: if it cannot
   run, that is the error.

The tools a reader runs (the demo, the benchmark) use the reader's broker if it answers
(users_broker_or_throwaway), and leave it as they found it; else a throwaway one, so.
"""

import os
import urllib.error
import urllib.parse

from broker import Broker, BrokerUnavailable, answers
from container import DEFAULT_IMAGE, Container, ensure_image
from localnode import LocalNode, installed

from common.cli import DEFAULT_URL
from common.connection import broker_urls, without_password

PATHS = ("container", "local")
HOW_TO_GET_ONE = (
    "no RabbitMQ for the tests: start a Docker engine that has RABBITMQ_IMAGE or can "
    "pull it, or install RabbitMQ (Debian/Ubuntu: apt-get install rabbitmq-server), or "
    "set AMQP_URL to a broker with the management plugin. For example: docker run -d "
    f"-p 127.0.0.1:5672:5672 -p 127.0.0.1:15672:15672 {DEFAULT_IMAGE} and "
    "AMQP_URL=amqp://guest:guest@localhost:5672/"
)


def image():
    return os.environ.get("RABBITMQ_IMAGE") or DEFAULT_IMAGE


def choose():
    """How start_throwaway() makes a broker here: ("container", None), or ("local", why
    not a container). Raises BrokerUnavailable, in one line, when neither can be had."""
    forced = os.environ.get("THROWAWAY", "")
    if forced not in ("", *PATHS):
        raise BrokerUnavailable(f"THROWAWAY is {forced!r}: it takes container or local")
    why = "THROWAWAY=local"
    if forced != "local":
        try:
            ensure_image(image())
            return "container", None
        except BrokerUnavailable as error:
            if forced == "container":
                raise BrokerUnavailable(f"THROWAWAY=container, but {error}") from None
            why = str(error)
    if installed():
        return "local", why
    if forced == "local":
        raise BrokerUnavailable("THROWAWAY=local, but rabbitmq-server is not installed here")
    raise BrokerUnavailable(f"{HOW_TO_GET_ONE} (the container: {why})")


def describe(path):
    return f"a container of {image()}" if path == "container" else LocalNode.kind


def start_throwaway(path=None):
    """A broker of our own, by choose() (or on the path given); the caller stops it."""
    path = path or choose()[0]
    for attempt in range(2):  # once more, with other ports, should one have been taken
        try:
            return Container(image()).start() if path == "container" else LocalNode()
        except BrokerUnavailable:
            if attempt:
                raise


def start_broker():
    """The tests' broker: see this module's docstring."""
    if os.environ.get("THROWAWAY_NODE"):
        return LocalNode.reuse(os.environ["THROWAWAY_NODE"])
    url = os.environ.get("AMQP_URL")
    if not url:
        return start_throwaway()
    host = urllib.parse.urlsplit(url).hostname or "localhost"
    broker = Broker(url, os.environ.get("RABBITMQ_API_URL", f"http://{host}:15672"))
    try:
        broker.api("GET", "/api/overview")
    except (urllib.error.URLError, OSError) as error:
        raise BrokerUnavailable(
            f"AMQP_URL is set, but its management API at {broker.api_url} does not "
            f"answer ({error}); the tests need it to make a virtual host per test: "
            "enable rabbitmq_management or set RABBITMQ_API_URL"
        ) from None
    return broker


def users_broker_or_throwaway(say, purpose):
    """For the tools a reader runs (the demo, the benchmark): the broker at AMQP_URL, else
    at the scripts' default URL, if it answers; else a throwaway one, after say()ing so.
    Returns (url, throwaway): the caller stops the throwaway (None if not started).
    The tests are stricter (start_broker): an AMQP_URL that does not answer is an error."""
    for url in broker_urls(os.environ.get("AMQP_URL", DEFAULT_URL)):  # a cluster's: any
        if answers(url):
            say(f"Using the broker at {without_password(url)}")
            return url, None
    path, why = choose()
    say(f"No broker answers there: starting a throwaway one for {purpose}, {describe(path)}")
    if why:
        say(f"(not a container: {why})")
    broker = start_throwaway(path)
    return broker.url("/"), broker
