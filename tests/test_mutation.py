"""The mutation campaign's tool (`scripts/mutation`) keeps working: the campaign itself is too slow for CI.

One real mutant of the policy pack runs end to end through the command and is reported killed; a tiny repository
checks each verdict (killed, survived, equivalent, stale, timeout); neither working tree is ever modified.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from harness import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import mutation  # scripts/ is not a package


def fingerprint(root: Path) -> dict[str, str]:
    """Every file of a working tree (as the campaign copies them) with its content's hash."""
    return {name: hashlib.sha256((root / name).read_bytes()).hexdigest() for name in mutation.repository_files(root)}


def test_a_real_mutant_of_the_policy_pack_is_reported_killed(tmp_path: Path) -> None:
    catalogue = tmp_path / "mutants.toml"
    catalogue.write_text(
        textwrap.dedent(
            """
            [[suite]]
            files = ["policy/**"]
            tests = ["tests/test_policy.py"]

            [[mutant]]
            id = "container-rules-see-no-container"
            file = "policy/sentineliq_policy/rules.py"
            find = 'CONTAINER = "docker:index/container:Container"'
            replace = 'CONTAINER = "docker:index/container:Nothing"'
            why = "no container rule ever runs"
            """
        )
    )
    before = fingerprint(ROOT)
    result = subprocess.run(
        [str(ROOT / "scripts" / "mutation"), "--catalogue", str(catalogue), "--no-baseline", "--json", "out.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mutation score: 1/1 non-equivalent mutants killed (100.0%)" in result.stdout
    (verdict,) = json.loads((tmp_path / "out.json").read_text())
    assert verdict["outcome"] == "killed"
    assert verdict["detail"].startswith("tests/test_policy.py::")
    assert fingerprint(ROOT) == before, "the campaign changed the working tree"


APP = "def answer():\n    return 42\n"
TESTS = "from app import answer\n\n\ndef test_answer():\n    assert answer() == 42\n"
CONFTEST = "import sys\nfrom pathlib import Path\n\nsys.path.insert(0, str(Path(__file__).parent.parent))\n"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A repository with one function and one test of it."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "slow.py").write_text("import time\n\ntime.sleep(0)\n")
    (tmp_path / "tests" / "test_app.py").write_text(TESTS + "\n\ndef test_slow():\n    import slow  # noqa\n")
    (tmp_path / "tests" / "conftest.py").write_text(CONFTEST)
    (tmp_path / "tests" / "test_nothing.py").write_text("")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    return tmp_path


def test_each_verdict_and_the_score(tiny: Path) -> None:
    suites = [mutation.Suite(("*.py",), ("tests/test_*.py",))]
    mutants = [
        mutation.Mutant("wrong-answer", "app.py", "return 42", "return 41", "the answer is wrong"),
        mutation.Mutant("parenthesised", "app.py", "return 42", "return (42)", "no change", equivalent="same value"),
        mutation.Mutant("unnoticed", "app.py", "return 42", "return 42 if True else 0", "untested branch"),
        mutation.Mutant("gone", "app.py", "return 7", "return 8", "the code moved on"),
        mutation.Mutant("untestable", "app.py", "42", "43", "no test runs", tests=("tests/test_nothing.py",)),
    ]
    # A hint that is no test (an earlier run's, since renamed) falls back to the whole selection.
    hints = {"wrong-answer": "tests/test_app.py::test_answer", "unnoticed": "tests/test_app.py::test_renamed"}
    before = fingerprint(tiny)
    verdicts = mutation.campaign(tiny, suites, mutants, jobs=2, timeout=300, baseline=True, hints=hints)
    results = {r.id: r for r in verdicts}
    assert fingerprint(tiny) == before, "the campaign changed the working tree"
    outcomes = {name: result.outcome for name, result in results.items()}
    assert outcomes == {
        "wrong-answer": "killed",
        "parenthesised": "equivalent",
        "unnoticed": "survived",
        "gone": "stale",
        "untestable": "error",
    }
    assert results["wrong-answer"].detail == "tests/test_app.py::test_answer"
    text, score = mutation.report(list(results.values()))
    assert score == 50.0
    assert text.splitlines()[0].startswith("mutation score: 1/2 non-equivalent mutants killed (50.0%)")
    assert "  - unnoticed (app.py): untested branch" in text
    assert "  - gone: 'return 7' occurs 0 times in app.py, not 1" in text
    assert "  - untestable: pytest exited 5" in text


def test_a_mutant_that_hangs_is_stopped_and_counts_as_killed(tiny: Path) -> None:
    suites = [mutation.Suite(("*.py",), ("tests/test_*.py",))]
    mutants = [mutation.Mutant("hangs", "slow.py", "time.sleep(0)", "time.sleep(600)", "never returns")]
    (result,) = mutation.campaign(tiny, suites, mutants, jobs=1, timeout=3, baseline=False)
    assert (result.outcome, result.detail) == ("timeout", "no result after 3 s")
    assert result.seconds < 60


def test_a_kill_by_a_test_that_fails_anyway_does_not_count(tiny: Path) -> None:
    """A flaky (here: always failing) test kills nothing: the killing test must pass without the mutant."""
    (tiny / "tests" / "test_flaky.py").write_text("def test_flaky():\n    assert False\n")
    suites = [mutation.Suite(("*.py",), ("tests/test_flaky.py",))]
    mutants = [mutation.Mutant("any", "app.py", "return 42", "return 41", "")]
    (result,) = mutation.campaign(tiny, suites, mutants, jobs=1, timeout=300, baseline=False)
    assert (result.outcome, result.detail) == (
        "error",
        "tests/test_flaky.py::test_flaky fails without the mutant too (flaky?)",
    )


def test_a_failing_baseline_stops_the_campaign(tiny: Path) -> None:
    (tiny / "app.py").write_text("def answer():\n    return 0\n")
    suites = [mutation.Suite(("*.py",), ("tests/test_*.py",))]
    mutants = [mutation.Mutant("m", "app.py", "return 0", "return 1", "")]
    with pytest.raises(SystemExit, match="the tests fail without any mutant"):
        list(mutation.campaign(tiny, suites, mutants, jobs=1, timeout=300, baseline=True))


def test_the_catalogue_loads_and_names_each_mutant_once() -> None:
    suites, mutants = mutation.load(mutation.CATALOGUE)
    assert suites and len(mutants) >= 100
    for mutant in mutants:
        assert mutant.why, mutant.id
        assert mutation.tests_for(ROOT, mutant, suites), f"{mutant.id} runs no test"
        assert all("test_snapshots" not in test for test in mutation.tests_for(ROOT, mutant, suites)), mutant.id


def test_every_mutant_of_the_catalogue_applies_to_the_code_as_it_is() -> None:
    """Code that moves or changes under a mutant makes it stale (it would mutate nothing): the change that moves
    the code updates its `file`/`find` in the same commit."""
    _, mutants = mutation.load(mutation.CATALOGUE)
    stale = {mutant.id: why for mutant in mutants if (why := mutation.applies(ROOT, mutant))}
    assert stale == {}
