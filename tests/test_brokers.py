"""Where the tests' broker comes from (tools/throwaway.py): a container, else a local node
with a notice that says why, else one error line; never a traceback."""

import pytest
from broker import BrokerUnavailable, free_port
from container import DEFAULT_IMAGE, engine
from localnode import installed
from processes import ROOT, Script
from throwaway import choose

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # as on a machine without one


def docker_answers():
    try:
        engine()
        return True
    except BrokerUnavailable:
        return False


def test_with_no_docker_engine_the_local_node_and_why(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE["DOCKER_HOST"])
    monkeypatch.delenv("THROWAWAY", raising=False)
    if not installed():
        with pytest.raises(BrokerUnavailable, match="install RabbitMQ"):
            choose()
        return
    path, why = choose()
    assert path == "local" and why.startswith("no Docker engine answers"), why


def test_an_image_docker_cannot_have_falls_back_to_the_local_node(monkeypatch):
    if not docker_answers():
        pytest.skip("needs a Docker engine, to ask it for an image it does not have")
    monkeypatch.setenv("RABBITMQ_IMAGE", "messaging-patterns/no-such-image:0")
    monkeypatch.delenv("THROWAWAY", raising=False)
    if not installed():  # neither path: the one error line names why not a container
        with pytest.raises(BrokerUnavailable, match="no-such-image:0 and cannot pull it"):
            choose()
        return
    path, why = choose()
    assert path == "local"
    assert why.startswith("Docker has no messaging-patterns/no-such-image:0 and cannot pull it")


@pytest.mark.parametrize("forced", ["container", "local", "both"])
def test_a_forced_path_that_cannot_run_is_one_line(monkeypatch, forced):
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE["DOCKER_HOST"])
    monkeypatch.setenv("THROWAWAY", forced)
    if forced == "local" and installed():
        assert choose() == ("local", "THROWAWAY=local")
        return
    with pytest.raises(BrokerUnavailable) as refused:
        choose()
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"THROWAWAY={forced}, but" if forced != "both" else "THROWAWAY is")


def test_the_suite_and_the_demo_say_so_in_one_line_without_a_traceback():
    """What a user types, with THROWAWAY=container and no Docker engine."""
    env = {**NO_ENGINE, "THROWAWAY": "container"}
    suite = Script("-m", "pytest", "tests/test_pubsub.py", env=env, url="")  # no AMQP_URL
    assert suite.wait(60) != 0
    said = [line for line in suite.stdout + suite.stderr if "THROWAWAY" in line]
    assert len(said) == 1, suite.describe()
    assert said[0].startswith("ERROR: THROWAWAY=container, but no Docker engine answers")
    demo = Script("tools/demo.py", "basic", env=env, url=f"amqp://127.0.0.1:{free_port()}")
    assert demo.wait(60) == 1, demo.describe()
    assert demo.stdout[-1].startswith("error: THROWAWAY=container, but no Docker engine")
    for run in (suite, demo):
        assert not any("Traceback" in line for line in run.stdout + run.stderr), run.describe()


def test_the_throwaway_broker_logs_no_deprecated_feature(broker, start):
    """RabbitMQ 4.3 logs the management plugin's metrics collector as deprecated, at boot:
    the nodes we start run without it (broker.NODE_CONFIG). Every pattern runs once."""
    if broker.log is None:
        pytest.skip(f"the log of {broker.kind} is out of reach: unset AMQP_URL")
    consumers = [start("basic/consumer.py"), start("pubsub/consumer.py")]
    consumers += [start("routing/consumer.py", "blue"), start("topics/consumer.py", "#")]
    for consumer in consumers:
        consumer.wait_ready()
    assert start("workers/producer.py", "-n", "1").wait() == 0
    log = broker.log()
    assert "Server startup complete" in log or "Starting broker" in log  # the log is read
    # Except global QoS: test_global_qos_on_a_quorum_queue_... uses it, on purpose.
    used = [line for line in log.splitlines() if "eprecated feature" in line]
    assert all("`global_qos`" in line for line in used), used


def test_the_readme_runs_the_series_ci_tests():
    """The README's docker line names the default image, whose series CI runs (sid)."""
    readme = (ROOT / "README.rst").read_text()
    assert f" {DEFAULT_IMAGE}\n" in readme
    if not docker_answers():
        pytest.skip("needs a Docker engine, to read the version of the image CI builds")
    try:
        built = engine().images.get("messaging-patterns/rabbitmq:sid")
    except Exception:  # docker.errors.ImageNotFound: not built on this machine
        pytest.skip("no messaging-patterns/rabbitmq:sid here: make image SUITE=sid")
    series = DEFAULT_IMAGE.split(":")[1].split("-")[0]
    assert built.labels["org.opencontainers.image.version"].startswith(series + ".")
