"""Mutation testing: each module's mutants against the tests that target that module.

    python tools/mutate.py [MODULE ...] [--jobs N] [--list] [--show ID] [--only ID ...]

Modules and their tests are listed in ``tests/mutation/targets.toml``; survivors judged equivalent
(with a reason each) in ``tests/mutation/equivalent.toml``. For every mutant the runner starts
pytest on the module's tests with ``-p tools.mutate_plugin``, which imports the module with that
one mutant applied (nothing is written to the work tree). A failing run kills the mutant, a run
past the timeout kills it by timeout (reported apart), a passing run lets it survive.

Score = (killed + timed out) / (mutants - listed equivalents). Exit status 1 when a module scores
below its ``fail_under``, a survivor is neither killed nor listed, an equivalent is stale or a
mutant could not be run; 2 on a configuration error.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tools`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.mutate_plugin import ENV_ID, ENV_INDEX, ENV_MODULE, ENV_SOURCE, SETUP_FAILED
from tools.mutation import Mutant, enumerate_mutants

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ROOT / "tests" / "mutation" / "targets.toml"
EQUIVALENTS = ROOT / "tests" / "mutation" / "equivalent.toml"
PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "-p", "tools.mutate_plugin", "--no-header")
#: pytest exit statuses that mean "the tests noticed": failures, errors at collection (a mutant
#: that breaks the import), an internal error raised by the mutated code.
CAUGHT_STATUSES = frozenset({1, 2, 3})


@dataclass(frozen=True, slots=True)
class Target:
    module: str
    source: Path
    tests: tuple[str, ...]
    fail_under: float


@dataclass(slots=True)
class Outcome:
    mutant: Mutant
    status: str  # killed | timeout | survived | error
    seconds: float


@dataclass(slots=True)
class Report:
    target: Target
    outcomes: list[Outcome] = field(default_factory=list)
    equivalent: dict[str, str] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def _survived(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "survived"]

    @property
    def listed(self) -> list[Outcome]:
        return [o for o in self._survived if o.mutant.id in self.equivalent]

    @property
    def survivors(self) -> list[Outcome]:
        return [o for o in self._survived if o.mutant.id not in self.equivalent]

    @property
    def score(self) -> float:
        scored = len(self.outcomes) - len(self.listed)
        caught = self.count("killed") + self.count("timeout")
        return 100.0 if scored == 0 else 100.0 * caught / scored


def load_targets(path: Path = TARGETS) -> dict[str, Target]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    targets: dict[str, Target] = {}
    for module, spec in data.get("targets", {}).items():
        source = ROOT / spec["source"]
        if not source.is_file():
            raise SystemExit(f"{path.name}: {module}: no such source {spec['source']}")
        tests = tuple(spec["tests"])
        if not tests:
            raise SystemExit(f"{path.name}: {module}: no tests listed")
        targets[module] = Target(module, source, tests, float(spec.get("fail_under", 0.0)))
    return targets


def load_equivalents(path: Path = EQUIVALENTS) -> dict[str, dict[str, str]]:
    """module -> {mutant id: reason}."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out: dict[str, dict[str, str]] = {}
    for entry in data.get("equivalent", []):
        module, mutant_id, reason = entry["module"], entry["id"], entry.get("reason", "").strip()
        if not reason:
            raise SystemExit(f"{path.name}: {module} {mutant_id}: a reason is required")
        out.setdefault(module, {})[mutant_id] = reason
    return out


def _run_pytest(target: Target, env: dict[str, str], timeout_s: float) -> tuple[int | None, float]:
    """pytest's exit status (None when it ran past ``timeout_s``) and the seconds taken."""
    t0 = time.monotonic()
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "pytest", *PYTEST_ARGS, *target.tests],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so a hung run is ended whole
    )
    try:
        rc: int | None = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rc = None
    return rc, time.monotonic() - t0


def _env(target: Target, mutant: Mutant | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKERHUB_MUTANT_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if mutant is not None:
        env[ENV_MODULE] = target.module
        env[ENV_SOURCE] = str(target.source)
        env[ENV_INDEX] = str(mutant.index)
        env[ENV_ID] = mutant.id
    return env


def run_target(
    target: Target, mutants: Sequence[Mutant], equivalent: dict[str, str], jobs: int
) -> Report:
    """Baseline, then every mutant; prints one character per mutant as it goes."""
    rc, baseline_s = _run_pytest(target, _env(target, None), timeout_s=600)
    if rc != 0:
        raise SystemExit(f"{target.module}: the tests fail without any mutant (exit {rc})")
    # Generous: a loaded machine must not turn a slow pass into a "caught by timeout".
    timeout_s = max(30.0, 5 * baseline_s + 10)
    print(
        f"== {target.module} ({target.source.relative_to(ROOT)}): {len(mutants)} mutants, "
        f"baseline {baseline_s:.1f} s, timeout {timeout_s:.0f} s",
        flush=True,
    )
    report = Report(target, equivalent=equivalent)

    def one(mutant: Mutant) -> Outcome:
        rc, seconds = _run_pytest(target, _env(target, mutant), timeout_s)
        if rc is None:
            status = "timeout"
        elif rc == 0:
            status = "survived"
        elif rc in CAUGHT_STATUSES:
            status = "killed"
        else:  # SETUP_FAILED, no tests collected, usage error: the run says nothing
            status = "error"
            if rc == SETUP_FAILED:
                print(f"\n{mutant.id}: the plugin could not apply it", file=sys.stderr)
        mark = {"killed": ".", "timeout": "T", "survived": "S", "error": "E"}[status]
        print(mark, end="", flush=True)
        return Outcome(mutant, status, seconds)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        report.outcomes = list(pool.map(one, mutants))
    print(flush=True)
    return report


def print_report(report: Report, all_ids: set[str]) -> bool:
    """Print one module's result; True when it passes its threshold with no unlisted survivor."""
    t = report.target
    killed, timeout = report.count("killed"), report.count("timeout")
    errors = report.count("error")
    print(
        f"{t.module}: {report.score:.1f} % ({killed} killed, {timeout} by timeout, "
        f"{len(report.listed)} equivalent, {len(report.survivors)} survived, {errors} errors, "
        f"of {len(report.outcomes)})"
    )
    for o in report.listed:
        print(f"  equivalent {o.mutant.id}  {o.mutant.describe()}")
        print(f"      because {report.equivalent[o.mutant.id]}")
    for o in report.survivors:
        print(f"  SURVIVED   {o.mutant.id}  {o.mutant.describe()}")
    for o in report.outcomes:
        if o.status == "timeout":
            print(f"  timeout    {o.mutant.id}  {o.mutant.describe()}")
        elif o.status == "error":
            print(f"  ERROR      {o.mutant.id}  {o.mutant.describe()} (exit not from the tests)")
        if o.status in ("killed", "timeout") and o.mutant.id in report.equivalent:
            print(f"  NOT EQUIVALENT (caught; remove it from the file) {o.mutant.id}")
    ran = {o.mutant.id for o in report.outcomes}
    stale = sorted(set(report.equivalent) - all_ids)
    for mutant_id in stale:
        print(f"  STALE      {mutant_id} is listed as equivalent but no longer exists")
    partial = ran != all_ids
    ok = report.score >= t.fail_under and errors == 0 and not stale
    if not partial:
        ok = ok and not report.survivors
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules of targets.toml (default: all)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="mutants run at once")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--show", metavar="ID", help="print one mutant's change, run nothing")
    parser.add_argument("--only", metavar="ID", action="append", help="run only these mutants")
    parser.add_argument("--targets", type=Path, default=TARGETS, help="the module -> tests map")
    args = parser.parse_args(argv)

    targets = load_targets(args.targets)
    equivalents = load_equivalents()
    unknown = set(args.modules) - set(targets)
    if unknown:
        print(f"unknown module(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for module in set(equivalents) - set(targets):
        print(f"warning: {EQUIVALENTS.name} lists {module}, not a target", file=sys.stderr)
    chosen = [targets[m] for m in (args.modules or targets)]

    ok = True
    summary: list[str] = []
    started = time.monotonic()
    for target in chosen:
        source = target.source.read_text(encoding="utf-8")
        mutants = enumerate_mutants(source, str(target.source))
        if args.list or args.show:
            for m in mutants:
                if args.list or m.id == args.show:
                    print(f"{target.module} {m.id}  {m.describe()}")
            continue
        selected = [m for m in mutants if not args.only or m.id in args.only]
        if not selected:
            continue
        report = run_target(target, selected, equivalents.get(target.module, {}), args.jobs)
        ok = print_report(report, {m.id for m in mutants}) and ok
        summary.append(
            f"  {target.module:<28} {report.score:5.1f} %  "
            f"(survived {len(report.survivors)}, equivalent {len(report.listed)}, "
            f"timeout {report.count('timeout')}, of {len(report.outcomes)})"
        )
    if summary:
        print(f"\nmutation scores ({time.monotonic() - started:.0f} s):")
        print("\n".join(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
