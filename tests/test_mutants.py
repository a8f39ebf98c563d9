"""make mutants itself: it tells a change the tests catch from one they miss, and refuses a
change it cannot make. On the password redaction, whose tests need no broker."""

import pytest
from mutants import ROOT, load, trial

GUARD = ["tests/test_common.py::test_a_url_is_printed_without_its_password"]
REDACTION = {"file": "common/connection.py", "tests": GUARD}


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        (('user = unquote(userinfo.split(":", 1)[0])', "user = unquote(userinfo)"), "killed"),
        (("# a password in the wrong place", "# a comment changed"), "survived"),
        (("no such line", "anything"), "error"),
    ],
    ids=["caught", "missed", "not-applied"],
)
def test_each_change_gets_its_verdict(tmp_path, change, verdict):
    find, replace = change
    mutant = {**REDACTION, "name": "test", "find": find, "replace": replace}
    assert trial(mutant, tmp_path)[0] == verdict


def test_the_unchanged_code_passes_its_tests(tmp_path):
    verdict, why = trial({**REDACTION, "name": "baseline"}, tmp_path)
    assert (verdict, why.endswith(" passed")) == ("ok", True), why


def test_every_mutant_names_a_promise_a_file_and_the_tests_that_guard_it():
    mutants = load([])
    assert len({mutant["name"] for mutant in mutants}) == len(mutants) >= 14
    for mutant in mutants:
        assert set(mutant) == {"name", "promise", "file", "find", "replace", "tests"}, mutant
        assert mutant["find"] != mutant["replace"] and "\n" not in mutant["find"]
        assert all(test.startswith("tests/test_") and "::" in test for test in mutant["tests"])
        # Each change still applies to the code as it is: a stale one fails here, early.
        assert (ROOT / mutant["file"]).read_text().count(mutant["find"]) == 1, mutant["name"]
