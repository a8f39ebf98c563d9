"""README.rst and the pages it links to tell the truth: their code is the files' code, their
transcripts real runs, their commands and pictures there."""

import re

import docutils.core
import pytest
from broker import Node
from processes import Scripts
from readme import (
    BENCH,
    DOCUMENTS,
    README,
    ROOT,
    SHOWN_FILE,
    blocks,
    excerpt,
    shown_files,
    synced,
)
from scenarios import PATTERNS, SCENARIOS
from transcripts import MARKED, Recorder, comparable, shown

from common.connection import RECONNECTED

TEXT = README.read_text()
TEXTS = {document.relative_to(ROOT).as_posix(): document.read_text() for document in DOCUMENTS}
ALL = "".join(TEXTS.values())


@pytest.mark.parametrize(("path", "start", "until", "code"), shown_files(ALL), ids=lambda v: v[:24])
def test_the_code_shown_is_the_code_in_the_file(path, start, until, code):
    assert code == excerpt(path, start, until)


def test_every_pattern_file_is_shown():
    files = {f"{p}/{s}.py" for p in PATTERNS for s in ("producer", "consumer")}
    assert files <= {path for path, *_ in shown_files(TEXT)}


@pytest.mark.parametrize("document", TEXTS)
def test_make_readme_would_change_no_code(document):
    assert synced(TEXTS[document]) == TEXTS[document]


def run_once(scenario, broker, url):
    """One run of the scenario on url: (transcripts, whether a script reconnected). A
    failed check is raised, unless a script reconnected: then the run proves nothing."""
    scripts = Scripts(url)
    recorder = Recorder(scripts.start, broker, url)
    failure = None
    try:
        SCENARIOS[scenario](recorder)
    except AssertionError as error:
        failure = error
    finally:
        scripts.kill()
    reconnected = any(RECONNECTED in script.stdout for script in scripts.started)
    if failure and not reconnected:
        raise failure
    return recorder.transcripts, reconnected


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_transcript_is_what_a_real_run_prints(scenario, broker, amqp_url, report):
    if not isinstance(broker, Node):  # the broker at AMQP_URL
        pytest.skip("the transcripts include rabbitmqctl, which an AMQP_URL broker does not offer")
    transcripts, reconnected = run_once(scenario, broker, amqp_url)
    if reconnected:
        # The broker dropped a script's connection or channel, and the script came back as
        # it should (RabbitMQ 3.10.8 can crash the channel of one of two consumers that
        # declare a new quorum queue at once). Its output is then not the README's, and
        # not wrong either: once more, on a virtual host of its own.
        report(f"readme [{scenario}]: a script reconnected, so the scenario ran again")
        vhost = broker.add_vhost()
        try:
            transcripts, reconnected = run_once(scenario, broker, broker.url(vhost))
        finally:
            broker.delete_vhost(vhost)
        assert not reconnected, f"{scenario}: a script reconnected in two runs in a row"
    in_readme = shown(ALL)
    assert {n for n in in_readme if n.startswith(f"{scenario}-")} == set(transcripts)
    ran = comparable(transcripts)
    assert comparable({name: in_readme[name] for name in transcripts}) == ran


def test_every_transcript_belongs_to_a_scenario():
    assert {name.split("-")[0] for name in shown(ALL)} <= {*SCENARIOS, "cluster"}


@pytest.mark.parametrize("document", TEXTS)
def test_every_image_and_page_named_is_there(document):
    folder = (ROOT / document).parent
    for page in re.findall(r"<([\w./-]+\.rst)>`_", TEXTS[document]):
        assert (folder / page).exists(), page
    for image in re.findall(r"^\.\. image:: (\S+)", TEXTS[document], re.MULTILINE):
        start = (folder / image).read_bytes()[:8]
        assert start == b"\x89PNG\r\n\x1a\n" or start.lstrip().startswith(b"<svg"), image


@pytest.mark.parametrize("document", TEXTS)
def test_every_command_shown_exists(document):
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    for language, content in blocks(TEXTS[document]):
        for line in content.splitlines():
            command = line.split("#")[0].split()
            if language != "console" or not line.startswith("$ "):
                continue
            if "cd" in command:  # the rest of the block runs in a folder of the reader's
                break
            if command[1] == "python" and command[2] != "-c":
                assert (ROOT / command[2]).exists(), line
            elif command[1] == "make":
                assert command[2] in targets, line
            elif command[1] == "pip":
                assert (ROOT / command[-1]).exists(), line


@pytest.mark.parametrize("document", TEXTS)
def test_each_document_renders_without_warnings(document):
    settings = {"halt_level": 2, "report_level": 2}
    docutils.core.publish_doctree(TEXTS[document], settings_overrides=settings)


@pytest.mark.parametrize("document", TEXTS)
def test_every_marker_is_one_the_tools_read(document):
    """A marker with a typo would be neither checked nor rewritten: none may go unread."""
    text = TEXTS[document]
    for marker, pattern in [("file", SHOWN_FILE), ("transcript", MARKED), ("bench", BENCH)]:
        written = len(re.findall(rf"^\.\. {marker}:", text, re.MULTILINE))
        assert len(pattern.findall(text)) == written, marker


def test_the_readme_stays_under_8000_words():
    """The team's limit for the walkthrough (measured in words, not lines)."""
    assert len((ROOT / "README.rst").read_text().split()) <= 8000
