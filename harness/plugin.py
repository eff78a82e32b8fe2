"""pytest plugin of bms-hil (entry point ``pytest11: bmshil``).

Thin on purpose: options, collection of one item per plan case, fixtures, and reporting
hooks. The work lives in ``harness.session`` (bench lifetime, results) and
``harness.procedures`` (what each case does).

Collection: ``pytest test_plans/parameters.yaml --suite regression`` (what ``bmshil run``
does) yields one item per plan case, named by the case id, with markers for its kind,
quantity and suites, so ``-k`` and ``-m "trip and cell_voltage"`` select as expected.
Without ``--suite`` the spec tables are not collected, so the project's own tests stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import benches as multi_bench
from harness.session import SUITES, BenchSession, ConfigError, default_bench_file

_SESSION = pytest.StashKey[BenchSession]()
_OUTCOME = pytest.StashKey[Any]()
_UNGUARD = pytest.StashKey[Any]()

KIND_MARKERS = (
    "trip",
    "recovery",
    "quiet",
    "hold",
    "delay",
    "switch_on",
    "switch_off",
    "readback",
    "function",
    "report",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bmshil", "BMS hardware-in-the-loop")
    group.addoption(
        "--bench", default=None, help="bench file (default: the simulated bench fixtures/sim.yaml)"
    )
    group.addoption("--suite", default=None, choices=SUITES, help="run this suite of the plan")
    group.addoption(
        "--sim-faults", default=None, help="firmware/link deviations for the simulated bench (YAML)"
    )
    group.addoption(
        "--parameters",
        default=None,
        help="device configuration under test (YAML of spec items to values; default: the "
        "spec defaults)",
    )
    group.addoption("--results-dir", default=None, help="write results.jsonl and run.json here")
    group.addoption(
        "--resume-run",
        action="store_true",
        default=False,
        help="continue the run in --results-dir: only cases without a final record run",
    )
    group.addoption(
        "--allow-overdue",
        action="store_true",
        default=False,
        help="accept instruments past their calibration due date (recorded in run.json)",
    )
    group.addoption(
        "--operator",
        default=None,
        help="name of the person answering operator prompts (default: the login name)",
    )
    group.addoption(
        "--decision-rule",
        default="simple",
        choices=("simple", "guarded"),
        help="simple: ILAC-G8 simple acceptance (default); guarded: guard band = U",
    )
    group.addoption(
        "--sim-profile", default=None, help="simulated device profile: ideal | realistic"
    )
    group.addoption("--sim-seed", default=None, type=int, help="seed of the simulated profile")
    group.addoption(
        "--unattended",
        action="store_true",
        default=False,
        help="nobody at the bench: cases needing a person (no relay) are skipped",
    )
    multi_bench.addoption(group)


def pytest_configure(config: pytest.Config) -> None:
    for name in KIND_MARKERS:
        config.addinivalue_line("markers", f"{name}: plan cases of kind {name.replace('_', '-')}")
    for name in SUITES:
        config.addinivalue_line("markers", f"{name}: plan cases of the {name} suite")
    config.addinivalue_line("markers", "bms_case: a case generated from the spec's test plan")
    if config.getoption("suite") is None and config.getoption("sim_faults") is None:
        return
    bench = config.getoption("bench") or str(default_bench_file())
    try:
        # Several benches (--worker-bench): the controller's or this worker's session.
        session_cls, bench = multi_bench.session_factory(config, bench)
        session = session_cls(
            Path(bench),
            config.getoption("suite"),
            config.getoption("results_dir"),
            config.getoption("sim_faults"),
            resume=config.getoption("resume_run"),
            allow_overdue=config.getoption("allow_overdue"),
            selection={
                "keyword": config.getoption("keyword") or None,
                "marker": config.getoption("markexpr") or None,
            },
            operator=config.getoption("operator"),
            unattended=config.getoption("unattended"),
            decision_rule=config.getoption("decision_rule"),
            sim_profile=config.getoption("sim_profile"),
            sim_seed=config.getoption("sim_seed"),
            parameters=Path(p) if (p := config.getoption("parameters")) else None,
        )
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[_SESSION] = session
    _ACTIVE.append(session)
    from harness import xdist_hooks

    xdist_hooks.configure(config, session)
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        # An operator prompt talks to the terminal: pytest's output capture steps aside.
        from harness.operator import add_prompt_guard

        config.stash[_UNGUARD] = add_prompt_guard(capman.global_and_fixture_disabled, order=-10)


def pytest_unconfigure(config: pytest.Config) -> None:
    unguard = config.stash.get(_UNGUARD, None)
    if unguard is not None:
        unguard()
    session = config.stash.get(_SESSION, None)
    if session is not None:
        if session in _ACTIVE:
            _ACTIVE.remove(session)
        session.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    session = parent.config.stash.get(_SESSION, None)
    if (
        session is not None
        and file_path.name == "parameters.yaml"
        and file_path.parent.name == "test_plans"
    ):
        return PlanFile.from_parent(parent, path=file_path)
    return None


class PlanFile(pytest.File):
    """The spec tables as a test file: one item per case of the suite's plan."""

    def collect(self):
        session = self.config.stash[_SESSION]
        try:
            cases = session.cases()
        except Exception as exc:
            raise pytest.UsageError(f"cannot build the plan: {exc}") from exc
        for case in cases:
            item = CaseItem.from_parent(self, name=case.id, case=case)
            names = ["bms_case", case.kind.replace("-", "_")]
            if getattr(case, "quantity", None):
                names.append(str(case.quantity))
            names.extend(getattr(case, "suites", []) or [])
            for name in names:
                _register_marker(self.config, name)
                item.add_marker(name)
            yield item


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """After -k/-m: the selected cases are the run's plan (run.json ``planned``). A resumed
    run keeps only the cases without a final record."""
    bms = config.stash.get(_SESSION, None)
    if bms is None:
        return
    cases = [i for i in items if isinstance(i, CaseItem)]
    if not cases:
        return
    try:
        remaining = set(bms.set_planned([i.case.id for i in cases]))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    done = [i for i in cases if i.case.id not in remaining]
    if done:
        items[:] = [i for i in items if not (isinstance(i, CaseItem) and i in done)]
        config.hook.pytest_deselected(items=done)


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    bms = _session_of_interrupt()
    if bms is not None:
        bms.note_interrupt(excinfo.value)


_ACTIVE: list[BenchSession] = []


def _session_of_interrupt() -> BenchSession | None:
    return _ACTIVE[-1] if _ACTIVE else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Open the bench before the first case, so a bench that cannot be opened (bad file, an
    instrument that does not answer or identifies wrongly, a refused faults file) is a usage
    error of the run, not a failure of its first case. First of the hook (on several
    benches, before the worker reports its collection: no case starts before every bench
    is open)."""
    bms = session.config.stash.get(_SESSION, None)
    if bms is None or not any(isinstance(i, CaseItem) for i in session.items):
        return
    if all(not getattr(i.case, "testable", True) for i in session.items if isinstance(i, CaseItem)):
        return
    try:
        bms.open_bench()
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    except Exception as exc:
        raise pytest.UsageError(f"cannot open the bench {bms.bench_file}: {exc}") from exc


def _register_marker(config: pytest.Config, name: str) -> None:
    """Declare a marker before use, so plan-derived names never warn as unknown."""
    known = {line.split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")}
    if name not in known:
        config.addinivalue_line("markers", f"{name}: plan cases marked {name}")


class CaseItem(pytest.Item):
    """One plan case; running it hands over to ``BenchSession.run``."""

    def __init__(self, *, case: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        from harness.allure_recorder import AllureRecorder

        session = self.config.stash[_SESSION]
        recorder = AllureRecorder(self.case)
        result = session.run(self.case, recorder, on_finish=recorder.finish)
        self.stash[_OUTCOME] = result
        if session.lost is not None and getattr(session, "stop_on_lost", True):
            # The bench stopped answering: stop the run now; the cases after this one are
            # recorded as not run when the session closes (on several benches the others
            # go on: ``harness.xdist_hooks``).
            self.session.shouldstop = str(session.lost)
        if result.outcome == "not_run":
            raise BenchError(result.message)
        if result.outcome == "skipped":
            pytest.skip(result.message)
        if result.outcome == "error":
            raise BenchError(result.message)
        decision = result.measurement.decision if result.measurement is not None else ""
        if decision.startswith("conditional"):
            # Never green, whatever the rule made of the outcome (Allure: its own category).
            raise CaseConditional(f"{decision} ({result.outcome}): {result.message}")
        if result.outcome == "failed":
            raise CaseFailed(result.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (CaseFailed, BenchError, CaseConditional)):
            return f"{self.case.id} ({self.case.item}): {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.case.item} {self.case.kind}: {self.case.id}"


class CaseFailed(Exception):
    """The device did not meet its spec (a product defect)."""


class BenchError(Exception):
    """The bench, not the device, failed the case."""


class CaseConditional(Exception):
    """The measured value's uncertainty interval straddles a limit: a conditional decision
    (``harness/procedures/uncertainty.py``), never a plain pass."""


@pytest.fixture(scope="session")
def bms_session(request: pytest.FixtureRequest) -> BenchSession:
    """The session's bench session (needs ``--suite`` or ``--bench``)."""
    session = request.config.stash.get(_SESSION, None)
    if session is None:
        bench = request.config.getoption("bench") or str(default_bench_file())
        session = BenchSession(Path(bench), None, request.config.getoption("results_dir"))
        request.config.stash[_SESSION] = session
    return session


@pytest.fixture(scope="session")
def bms_bench(bms_session: BenchSession) -> Any:
    """The open bench (opened once per session; safe state on every exit)."""
    return bms_session.open_bench()


@pytest.fixture
def bms_link(bms_bench: Any) -> Any:
    """The BMS link of the bench; the bench returns to its safe state after the test."""
    yield bms_bench.bms
    bms_bench.safe_state()


@pytest.fixture
def bms_clock(bms_bench: Any) -> Any:
    """The bench's clock: real time on a real bench, the simulator's clock on the simulator."""
    return bms_bench.clock
