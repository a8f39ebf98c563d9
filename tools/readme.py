"""The documents' code blocks (README.rst and the pages it links to): found for the tests,
and rewritten from the files by `make readme`.

A block that shows a file is marked so, and holds the file to the letter:

    .. file: basic/producer.py

    .. code-block:: python

        <the file, indented four spaces>

or the part of it from the first line that starts with one text, up to (not
including) the next line that starts with another; either may be left out (a
part that starts indented, a method say, is shown moved to the left):

    .. file: basic/producer.py from "QUEUE =" until "def main"

The benchmark's table is the last `make bench` run's, from the figures it saved:

    .. bench: images/bench.json
"""

import json
import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
DOCS = ["cluster", "benchmarks", "helpers", "conventions"]
DOCUMENTS = [README, *(ROOT / "docs" / f"{page}.rst" for page in DOCS), ROOT / "CONTRIBUTING.rst"]
BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:    .*\n|\n)+)", re.MULTILINE)
SHOWN_FILE = re.compile(
    r'^\.\. file: (\S+)(?: from "([^"]*)")?(?: until "([^"]*)")?\n\n'
    r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)",
    re.MULTILINE,
)


def unindent(block):
    return "".join(line[4:] if line.strip() else "\n" for line in block.splitlines(True)).strip()


def indent(text):
    return "".join(f"    {line}" if line.strip() else "\n" for line in text.splitlines(True))


def excerpt(path, start="", until=""):
    """The file at path, or the part of it that a block marked so shows."""
    start, until = start or "", until or ""  # a group of the marker left out: None
    lines = (ROOT / path).read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(start)] if start else [0]
    if not starts:
        raise ValueError(f"{path}: no line starts with {start!r}")
    ends = [i for i in range(starts[0] + 1, len(lines)) if lines[i].startswith(until)]
    if until and not ends:
        raise ValueError(f"{path}: no line after {start!r} starts with {until!r}")
    shown = "\n".join(lines[starts[0] : ends[0] if until else len(lines)])
    return textwrap.dedent(shown).strip()  # an indented part (a method): from the left


def shown_files(text):
    """[(path, start, until, code as shown)] for every block that shows a file."""
    return [(path, *part, unindent(block)) for path, *part, block in SHOWN_FILE.findall(text)]


def blocks(text):
    """[(language, content)] for every code block."""
    return [(language, unindent(block)) for language, block in BLOCK.findall(text)]


BENCH = re.compile(r"^\.\. bench: (\S+)\n\n(?:.+\n)+?\n(?:=.*\n)(?:.+\n)+?(?:=.*\n)", re.MULTILINE)


def synced(text):
    """text with every file's block replaced by the file as it is now, and the benchmark's
    table by the figures of its last run."""

    def current(match):
        code = excerpt(*match.group(1, 2, 3)) + "\n"
        marker = match.group(0).split("\n", 1)[0]
        return f"{marker}\n\n.. code-block:: python\n\n{indent(code)}\n"

    def measured(match):
        from benchmarks.report import rst_table  # here: it needs rich, which only the tools install

        results = json.loads((ROOT / match.group(1)).read_text())
        return f".. bench: {match.group(1)}\n\n{rst_table(results)}\n"

    return BENCH.sub(measured, SHOWN_FILE.sub(current, text))


if __name__ == "__main__":
    import sys

    for document in DOCUMENTS:
        document.write_text(synced(document.read_text()))
    if "--transcripts" in sys.argv:
        from transcripts import record

        record(DOCUMENTS)
