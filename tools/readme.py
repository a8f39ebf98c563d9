"""The documents' code blocks (README.rst and the pages it links to): found for the tests,
and rewritten from the files by `make readme`.

A block that shows a file is marked so, and holds the file to the letter:

    .. file: basic/producer.py

    .. code-block:: python

        <the file, indented four spaces>
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
DOCUMENTS = [README, ROOT / "docs" / "cluster.rst", ROOT / "docs" / "benchmarks.rst"]
DOCUMENTS.append(ROOT / "CONTRIBUTING.rst")
BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:    .*\n|\n)+)", re.MULTILINE)
SHOWN_FILE = re.compile(
    r"^\.\. file: (\S+)\n\n\.\. code-block:: python\n\n((?:    .*\n|\n)+)", re.MULTILINE
)


def unindent(block):
    return "".join(line[4:] if line.strip() else "\n" for line in block.splitlines(True)).strip()


def indent(text):
    return "".join(f"    {line}" if line.strip() else "\n" for line in text.splitlines(True))


def shown_files(text):
    """[(path, code as shown)] for every block that shows a file."""
    return [(path, unindent(block)) for path, block in SHOWN_FILE.findall(text)]


def blocks(text):
    """[(language, content)] for every code block."""
    return [(language, unindent(block)) for language, block in BLOCK.findall(text)]


def synced(text):
    """text with every file's block replaced by the file as it is now."""

    def current(match):
        code = (ROOT / match.group(1)).read_text()
        return f".. file: {match.group(1)}\n\n.. code-block:: python\n\n{indent(code)}\n"

    return SHOWN_FILE.sub(current, text)


if __name__ == "__main__":
    import sys

    for document in DOCUMENTS:
        document.write_text(synced(document.read_text()))
    if "--transcripts" in sys.argv:
        from transcripts import record

        record(DOCUMENTS)
