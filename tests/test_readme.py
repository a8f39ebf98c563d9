"""README.rst shows exactly the code the files hold and output of the shape they print."""

import re

import docutils.core
import pytest
from processes import ROOT

README = (ROOT / "README.rst").read_text()
BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:    .*\n|\n)+)", re.MULTILINE)
SHOWN_FILE = re.compile(
    r"^\.\. file: (\S+)\n\n\.\. code-block:: python\n\n((?:    .*\n|\n)+)", re.M
)
TIMESTAMP = r"\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"
WAITING = " [*] Waiting for messages. To exit press CTRL+C"
PATTERN_NAME = {"basic": "Basic", "workers": "Workers"}


def unindent(block):
    return "".join(line[4:] if line.strip() else "\n" for line in block.splitlines(True)).strip()


def console_blocks():
    for language, body in BLOCK.findall(README):
        lines = unindent(body).splitlines()
        command = re.match(r"^\$ python (\w+)/(producer|consumer)\.py$", lines[0])
        if language == "console" and command:
            yield command.group(1), command.group(2), lines[1:]


@pytest.mark.parametrize(("path", "shown"), SHOWN_FILE.findall(README), ids=lambda v: v[:30])
def test_the_code_shown_is_the_code_in_the_file(path, shown):
    assert unindent(shown) == (ROOT / path).read_text().strip()


def test_every_pattern_file_is_shown():
    shown = {path for path, _ in SHOWN_FILE.findall(README)}
    files = {str(p.relative_to(ROOT)) for p in ROOT.glob("*/*.py") if p.parent.name != "tests"}
    assert files - {f for f in files if f.startswith("common/")} <= shown


@pytest.mark.parametrize(("folder", "script", "lines"), list(console_blocks()), ids=str)
def test_the_output_shown_has_the_shape_the_scripts_print(folder, script, lines):
    message = rf"{TIMESTAMP} - {PATTERN_NAME[folder]} - Hello World"
    if script == "producer":  # numbered from 0, one line per message
        assert all(re.fullmatch(f"{message} sent", line) for line in lines), lines
        assert [int(line.split()[0]) for line in lines] == list(range(len(lines)))
    else:
        assert lines[0] == WAITING
        assert all(re.fullmatch(f"{message} received", line) for line in lines[1:]), lines


def test_the_readme_renders_without_warnings():
    docutils.core.publish_doctree(README, settings_overrides={"halt_level": 2, "report_level": 2})
