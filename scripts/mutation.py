"""A sampled, targeted mutation campaign: do the tests fail when the deployment would?

Each mutant of the catalogue (`scripts/mutants.toml`) is one hand-written text substitution in the program
(`sentinel_infra/`), the policy pack (`policy/`) or the shell we ship (`backup/`, the shell embedded in the
specs), chosen because it would break or weaken a real deployment. For each mutant, on a copy of the repository
in a temporary folder (the working tree is never touched), the substitution is applied and only the test files
relevant to the mutated file run (`pytest -x`, under a timeout): a failing test kills the mutant, a passing run
lets it survive. The score is the share of non-equivalent mutants killed; the survivors are listed.

Why not mutmut or cosmic-ray: with a full suite per mutant they need hours on a shared 2-core machine, and
most of their operator mutants (`+` to `-` in a message) say little about a deployment. The catalogue is
reviewed data; the run is deterministic (fixed hash and Hypothesis seeds, catalogue order).

    scripts/mutation                         # the whole campaign
    scripts/mutation --only 'policy-*' -j 2  # some mutants, two at a time
    scripts/mutation --list                  # the catalogue
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "scripts" / "mutants.toml"
PYTEST = ["-m", "pytest", "-q", "-x", "-rf", "--no-header", "-p", "no:cacheprovider", "--hypothesis-seed=0"]
# Every run alike, and no stale bytecode: a substitution can keep a file's size and mtime second.
ENVIRONMENT = {"PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}


@dataclass(frozen=True)
class Suite:
    """The test files that run for mutants of matching files (globs, relative to the repository)."""

    files: tuple[str, ...]
    tests: tuple[str, ...]
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    why: str
    count: int = 1
    """How many times `find` occurs in the file; every occurrence is replaced."""
    first: tuple[str, ...] = ()
    """Test files to run before the rest of the suite (speed only: a survivor still runs the whole suite)."""
    tests: tuple[str, ...] = ()
    """Test files that replace the suite of the file, when its suite does not reach the mutated code."""
    equivalent: str = ""
    """Why the mutant cannot change behaviour, when it cannot: it is run, but not counted."""


@dataclass
class Result:
    id: str
    file: str
    outcome: str
    """killed, timeout (counted as killed), survived, equivalent (survived as declared), stale (did not apply),
    error (the tests could not run: not counted, listed)."""
    why: str
    detail: str = ""
    seconds: float = 0.0
    tests: list[str] = field(default_factory=list)


def load(path: Path) -> tuple[list[Suite], list[Mutant]]:
    data = tomllib.loads(path.read_text())
    suites = [Suite(tuple(s["files"]), tuple(s["tests"]), tuple(s.get("exclude", ()))) for s in data.get("suite", [])]
    mutants = []
    for entry in data.get("mutant", []):
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()}
        mutants.append(Mutant(**fields))
    ids = [m.id for m in mutants]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SystemExit(f"mutation: duplicate mutant ids in {path}: {', '.join(duplicates)}")
    return suites, mutants


def expand(root: Path, patterns: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """Test files matching the globs (or test ids, `file::test`), in order, without duplicates or excluded ones."""
    found: list[str] = []
    for pattern in patterns:
        if "::" in pattern:
            names = [pattern] if (root / pattern.split("::", 1)[0]).is_file() else []
        else:
            names = [path.relative_to(root).as_posix() for path in sorted(root.glob(pattern))]
        for name in names:
            if name not in found and not any(fnmatch.fnmatch(name, x) for x in exclude):
                found.append(name)
    return found


def tests_for(root: Path, mutant: Mutant, suites: Sequence[Suite]) -> list[str]:
    if mutant.tests:
        selected = expand(root, mutant.tests)
    else:
        suite = next((s for s in suites if any(fnmatch.fnmatch(mutant.file, f) for f in s.files)), None)
        if suite is None:
            raise SystemExit(f"mutation: no suite covers {mutant.file} (mutant {mutant.id})")
        selected = expand(root, suite.tests, suite.exclude)
    head = [t for t in expand(root, mutant.first) if t in selected]
    return head + [t for t in selected if t not in head]


def repository_files(root: Path) -> list[str]:
    """Tracked and untracked-but-not-ignored files of the working tree: what the campaign measures."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607 - git from PATH
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listing.split("\0") if name and (root / name).is_file() and not (root / name).is_symlink()]


def make_copy(root: Path, target: Path) -> None:
    for name in repository_files(root):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination)
    venv = (root / "venv").resolve()
    if venv.is_dir():
        (target / "venv").symlink_to(venv)


def python(root: Path) -> str:
    candidate = root / "venv" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def run_tests(copy: Path, tests: Sequence[str], timeout: float) -> tuple[str, str]:
    """`passed`, `failed`, `timeout` or `error`, and the first failing test (or the output's tail).

    pytest exits 1 when a test failed and 2 when collecting failed (a mutant that breaks an import): both kill.
    Any other code (no such test, no test collected, a usage error) says nothing about the mutant.
    """
    with subprocess.Popen(  # noqa: S603 - the project's own interpreter and test files
        [python(copy), *PYTEST, *tests],
        cwd=copy,
        env={**os.environ, **ENVIRONMENT},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        RUNNING.add(process.pid)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return "timeout", f"no result after {timeout:.0f} s"
        finally:
            RUNNING.discard(process.pid)
    if process.returncode == 0:
        return "passed", ""
    tail = " | ".join(output.strip().splitlines()[-3:])
    if process.returncode not in (1, 2):
        return "error", f"pytest exited {process.returncode}: {tail}"
    failed = re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", output, flags=re.MULTILINE)
    return "failed", failed[0] if failed else tail


RUNNING: set[int] = set()
"""Process groups of the pytest runs under way (each in a session of its own, so a timeout kills its children)."""
STOPPING = threading.Event()


def stop(signum: int, _frame: object) -> None:
    """On SIGTERM or SIGINT: kill the test runs under way, so the workers return and the copies are removed."""
    STOPPING.set()
    for group in list(RUNNING):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    raise SystemExit(128 + signum)


def applies(root: Path, mutant: Mutant) -> str:
    """Empty when the substitution applies to the file as it is; otherwise why not."""
    path = root / mutant.file
    if not path.is_file():
        return f"{mutant.file} does not exist"
    found = path.read_text().count(mutant.find)
    if found != mutant.count:
        return f"{mutant.find!r} occurs {found} times in {mutant.file}, not {mutant.count}"
    if mutant.find == mutant.replace:
        return "find and replace are equal"
    return ""


def run_mutant(copy: Path, mutant: Mutant, tests: Sequence[str], timeout: float, hint: str = "") -> Result:
    """Apply the mutant to the copy, run the hinted test alone (if any), then, unless it failed, the whole
    selection; restore the file."""
    path = copy / mutant.file
    original = path.read_text()
    started = time.monotonic()
    try:
        path.write_text(original.replace(mutant.find, mutant.replace))
        status, detail = run_tests(copy, [hint], timeout) if hint else ("passed", "")
        if status in ("passed", "error"):
            status, detail = run_tests(copy, tests, timeout)
    finally:
        path.write_text(original)
    if status == "failed" and "::" in detail:
        # The kill counts only if the killing test passes without the mutant: a flaky test proves nothing.
        again, _ = run_tests(copy, [detail], timeout)
        if again != "passed":
            status, detail = "error", f"{detail} fails without the mutant too (flaky?)"
    seconds = round(time.monotonic() - started, 1)
    if status == "passed":
        outcome = "equivalent" if mutant.equivalent else "survived"
        detail = mutant.equivalent
    else:
        outcome = {"failed": "killed", "timeout": "timeout", "error": "error"}[status]
    return Result(mutant.id, mutant.file, outcome, mutant.why, detail, seconds, list(tests))


def load_hints(paths: Sequence[Path]) -> dict[str, str]:
    """The test that killed each mutant in earlier runs (`--json` files): it runs first, alone."""
    hints: dict[str, str] = {}
    for path in paths:
        for entry in json.loads(path.read_text()):
            if entry["outcome"] == "killed" and "::" in entry["detail"]:
                hints[entry["id"]] = entry["detail"]
    return hints


def campaign(
    root: Path,
    suites: Sequence[Suite],
    mutants: Sequence[Mutant],
    *,
    jobs: int,
    timeout: float,
    baseline: bool,
    hints: Mapping[str, str] | None = None,
    progress: Path | None = None,
) -> Iterator[Result]:
    """Run the mutants; `progress` receives the results as JSON after each one."""
    stale = {m.id: applies(root, m) for m in mutants}
    runnable = [m for m in mutants if not stale[m.id]]
    selections = {m.id: tests_for(root, m, suites) for m in runnable}
    with tempfile.TemporaryDirectory(prefix="sentineliq-mutation-") as scratch:
        copies: Queue[Path] = Queue()
        for worker in range(max(1, min(jobs, len(runnable)))):
            copy = Path(scratch) / f"worker-{worker}"
            make_copy(root, copy)
            copies.put(copy)
        broken = threading.Event()

        def check_baseline() -> str:
            """Every selected test passes without a mutant (else a kill would prove nothing); "" when they do.

            It runs as the first job, beside the mutants: their verdicts only count once it has passed."""
            every = expand(root, [t for m in runnable for t in selections[m.id]])
            copy = copies.get()
            try:
                print(f"baseline: {len(every)} test files on the unmutated copy ...", file=sys.stderr, flush=True)
                status, detail = run_tests(copy, every, timeout * 2)
            finally:
                copies.put(copy)
            if status == "passed":
                return ""
            broken.set()
            return detail

        def one(mutant: Mutant) -> Result:
            if STOPPING.is_set() or broken.is_set():
                return Result(mutant.id, mutant.file, "error", mutant.why, "the campaign was stopped")
            copy = copies.get()
            try:
                hint = (hints or {}).get(mutant.id, "")
                # Only a test of the mutant's own selection, so a hint never widens what may kill it.
                if hint.split("::", 1)[0] not in selections[mutant.id]:
                    hint = ""
                return run_mutant(copy, mutant, selections[mutant.id], timeout, hint)
            finally:
                copies.put(copy)

        results: dict[str, Result] = {}
        with ThreadPoolExecutor(max_workers=copies.qsize()) as pool:
            checked = pool.submit(check_baseline) if baseline and runnable else None
            for result in pool.map(one, runnable):
                print(f"{result.outcome:>10}  {result.id}  ({result.seconds} s) {result.detail}", file=sys.stderr)
                results[result.id] = result
                if progress is not None:
                    progress.write_text(json.dumps([asdict(r) for r in results.values()], indent=2) + "\n")
            failure = checked.result() if checked is not None else ""
        if failure:
            raise SystemExit(f"mutation: the tests fail without any mutant ({failure}); fix them first")
        for mutant in mutants:
            if stale[mutant.id]:
                yield Result(mutant.id, mutant.file, "stale", mutant.why, stale[mutant.id])
            else:
                yield results[mutant.id]


def report(results: Sequence[Result]) -> tuple[str, float]:
    """The score line and the survivors, as printed; and the score in percent."""
    by = {kind: [r for r in results if r.outcome == kind] for kind in ("killed", "timeout", "survived", "equivalent")}
    stale = [r for r in results if r.outcome == "stale"]
    errors = [r for r in results if r.outcome == "error"]
    killed = len(by["killed"]) + len(by["timeout"])
    counted = killed + len(by["survived"])
    score = 100.0 * killed / counted if counted else 0.0
    lines = [
        f"mutation score: {killed}/{counted} non-equivalent mutants killed ({score:.1f}%)"
        f"; {len(by['equivalent'])} equivalent (not counted)"
        + (f"; {len(by['timeout'])} of the killed by timeout" if by["timeout"] else "")
        + (f"; {len(stale)} stale (not run)" if stale else "")
        + (f"; {len(errors)} could not run their tests" if errors else "")
    ]
    areas = sorted({r.file.split("/")[0] for r in results if r.outcome != "stale"})
    for area in areas:
        mine = [r for r in results if r.file.split("/")[0] == area and r.outcome in ("killed", "timeout", "survived")]
        dead = sum(r.outcome != "survived" for r in mine)
        lines.append(f"  {area + '/':<16} {dead}/{len(mine)} killed")
    if by["survived"]:
        lines.append("survivors:")
        lines += [f"  - {r.id} ({r.file}): {r.why}" for r in by["survived"]]
    if by["equivalent"]:
        lines.append("equivalent (survived, as declared):")
        lines += [f"  - {r.id} ({r.file}): {r.detail}" for r in by["equivalent"]]
    if stale:
        lines.append("stale (the catalogue no longer matches the code; update scripts/mutants.toml):")
        lines += [f"  - {r.id}: {r.detail}" for r in stale]
    if errors:
        lines.append("errors (the tests did not run; not counted):")
        lines += [f"  - {r.id}: {r.detail}" for r in errors]
    return "\n".join(lines), score


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE, help="the mutants (TOML)")
    parser.add_argument("--only", action="append", default=[], metavar="ID", help="mutant ids or globs")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant (default 900)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run without mutants")
    parser.add_argument("--json", type=Path, help="also write every result to this file (as they come)")
    parser.add_argument(
        "--hints", type=Path, action="append", default=[], help="an earlier run's --json: its killing tests run first"
    )
    parser.add_argument("--fail-under", type=float, default=0, help="exit 1 below this score (percent)")
    parser.add_argument("--sample", type=int, help="run this many of the selected mutants, chosen by --seed")
    parser.add_argument("--seed", default="0", help="the sample's seed (the same seed, the same sample)")
    parser.add_argument("--also", action="append", default=[], metavar="ID", help="mutants added to the sample")
    parser.add_argument("--list", action="store_true", help="print the catalogue and exit")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    suites, catalogue = load(args.catalogue)
    mutants = catalogue
    if args.only:
        mutants = [m for m in mutants if any(fnmatch.fnmatchcase(m.id, pattern) for pattern in args.only)]
        if not mutants:
            parser.error(f"no mutant matches {', '.join(args.only)}")
    if args.sample is not None and args.sample < len(mutants):
        chosen = set(
            sorted((m.id for m in mutants), key=lambda i: hashlib.sha256(f"{args.seed}:{i}".encode()).digest())[
                : args.sample
            ]
        )
        mutants = [m for m in mutants if m.id in chosen]
    if args.also:
        extra = {m.id for m in catalogue if any(fnmatch.fnmatchcase(m.id, pattern) for pattern in args.also)}
        mutants = [m for m in catalogue if m.id in extra or m in mutants]
    if args.list:
        for m in mutants:
            print(f"{m.id:<40} {m.file:<40} {m.why}")
        return 0
    print(f"{len(mutants)} mutants of {ROOT}, {args.jobs} at a time", file=sys.stderr, flush=True)
    results = list(
        campaign(
            ROOT,
            suites,
            mutants,
            jobs=args.jobs,
            timeout=args.timeout,
            baseline=not args.no_baseline,
            hints=load_hints(args.hints),
            progress=args.json,
        )
    )
    text, score = report(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    if any(r.outcome in ("stale", "error") for r in results):
        return 2
    return 1 if score < args.fail_under else 0


if __name__ == "__main__":
    sys.exit(main())
