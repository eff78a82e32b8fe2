"""pytest-xdist glue for a run on several benches: the scheduler and the hooks of the
controller and of the workers (``harness.benches`` holds the sessions).

Scheduler (:class:`BenchScheduling`): longest work first across benches. The plan's cases
are grouped into units (a case with a ``sequence_group`` attribute joins every case of that
group, in plan order, so they run in sequence on one bench; without one, the cases driven
by a hand-step relay form one group, :data:`HAND_STEP_GROUP`; any other case is its own
unit); units are ordered by their estimated real-bench time (``est_bench_s``, summed over a
group), longest first, and handed out one at a time to whichever bench is free (a worker
holds at most the unit it runs and the next one, which it needs to start the current
case). This is list scheduling in LPT order: the run's bench time (the busiest bench) is
at most the total over the number of benches plus the longest unit. Waits are not
overlapped.

A bench lost on one worker: its reports carry ``bmshil_bench_lost``; from then on it gets
no more cases, the ones it already holds are recorded ``not_run`` by it, and the other
benches take the rest. The run then ends ``bench_lost`` (never complete).

Signals: the workers leave the controller's process group, so a Ctrl-C at the terminal
reaches only the controller, which forwards SIGINT/SIGTERM to every worker (each returns its
bench to the safe state and stops); a second signal stops the controller at once. A worker
gets SIGTERM when the controller dies (``PR_SET_PDEATHSIG``), kill -9 included.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from typing import Any

import pytest

from harness.benches import INVOCATION_KEY, LOST_PROPERTY, ControllerSession, WorkerSession


def configure(config: pytest.Config, session: Any) -> None:
    """Register the controller's or the worker's hooks for a several-bench session."""
    if isinstance(session, ControllerSession):
        config.pluginmanager.register(ControllerHooks(config, session), "bmshil-controller")
    elif isinstance(session, WorkerSession):
        _leave_process_group()
        config.pluginmanager.register(WorkerHooks(session), "bmshil-worker")


def _leave_process_group() -> None:
    """A worker: its own process group (a terminal's Ctrl-C goes to the controller, which
    forwards it once), and SIGTERM when the controller dies."""
    import ctypes
    import sys

    from harness.bench import PR_SET_PDEATHSIG

    parent = os.getppid()
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the controller died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


class BenchScheduling:
    """xdist scheduler: units of work, longest first, to whichever bench is free."""

    def __init__(self, config: pytest.Config, log: Any, session: ControllerSession) -> None:
        from xdist.workermanage import parse_tx_spec_config

        self.numnodes = len(parse_tx_spec_config(config))
        self.config = config
        self.log = log
        self.session = session
        self.node2collection: dict[Any, list[str]] = {}
        self.node2pending: dict[Any, list[int]] = {}
        self.collection: list[str] | None = None
        self.units: list[list[int]] = []
        self.lost: set[Any] = set()
        self.down_errors: dict[Any, Any] = {}
        self.refused = False

    # -- the protocol -----------------------------------------------------------------
    @property
    def nodes(self) -> list[Any]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.node2collection) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self.collection is None:
            return False
        if self.units and self._healthy():
            return False
        return all(len(p) < 2 for p in self.node2pending.values())

    @property
    def has_pending(self) -> bool:
        return bool(self.units) or any(self.node2pending.values())

    def add_node(self, node: Any) -> None:
        self.node2pending[node] = []

    def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
        self.node2collection[node] = list(collection)

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        pending = self.node2pending.get(node)
        if pending is not None and item_index in pending:
            pending.remove(item_index)
        self._fill(node)

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        self.units.insert(0, [self.collection.index(item)])
        for node in self._healthy():
            self._fill(node)

    def remove_pending_tests_from_node(self, node: Any, indices: Sequence[int]) -> None:
        pending = self.node2pending.get(node, [])
        for i in indices:
            if i in pending:
                pending.remove(i)
        self.units[:0] = [[i] for i in indices]

    def remove_node(self, node: Any) -> str | None:
        """The node went down: the case it was running is the crash item (only when it died;
        a worker that finished, lost bench or not, leaves no crash item)."""
        pending = self.node2pending.pop(node)
        if node not in self.node2collection and self.collection is None:
            self.numnodes -= 1  # it never collected: do not wait for it
        error = self.down_errors.get(node)
        if error in (None, "keyboard-interrupt") or not pending or self.collection is None:
            return None
        return self.collection[pending[0]]

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            for node in self._healthy():
                self._fill(node)
            return
        collections = list(self.node2collection.values())
        if not collections:
            return
        first = collections[0]
        if any(c != first for c in collections[1:]):
            from xdist.report import report_collection_diff

            nodes = list(self.node2collection)
            msg = report_collection_diff(
                first, collections[1], nodes[0].gateway.id, nodes[1].gateway.id
            )
            self.config.hook.pytest_collectreport(report=_failed_collect(str(msg)))
            for node in self.nodes:
                node.shutdown()
            return
        self.collection = first
        self.units = plan_units(first, self.session.case_lookup())
        for node in self.nodes:
            self._fill(node)

    # -- ours -------------------------------------------------------------------------
    def node_down(self, node: Any, error: Any) -> None:
        self.down_errors[node] = error

    def mark_lost(self, node: Any) -> None:
        """The bench of ``node`` is lost: no more cases for it; it stops after the ones it
        holds (recorded not run by it)."""
        if node in self.lost:
            return
        self.lost.add(node)
        node.shutdown()
        if not self._healthy():
            for other in self.nodes:
                if not other.shutting_down:
                    other.shutdown()

    def _healthy(self) -> list[Any]:
        return [n for n in self.node2pending if n not in self.lost and not n.shutting_down]

    def _fill(self, node: Any) -> None:
        if self.collection is None or node not in self.node2pending:
            return
        if node in self.lost or node.shutting_down:
            return
        pending = self.node2pending[node]
        while len(pending) < 2 and self.units:
            unit = self.units.pop(0)
            pending.extend(unit)
            for i in unit:
                self.session.dispatched[_case_id(self.collection[i])] = node.gateway.id
            node.send_runtest_some(unit)
        if not self.units:  # nothing left to hand out: each runs what it holds and stops
            for other in self.nodes:
                if not other.shutting_down:
                    other.shutdown()


def _case_id(nodeid: str) -> str:
    return nodeid.rsplit("::", 1)[-1]


#: The implicit sequence group of the cases driven by a hand-step (relay) when the plan
#: names none: they change latched device state (trip counts, lockouts, power cycles) that
#: the next such case inherits, so they keep the plan order the one-bench run has.
HAND_STEP_GROUP = "hand-steps"


def sequence_group(case: Any) -> Any:
    """The case's ``sequence_group`` (the plan's), else :data:`HAND_STEP_GROUP` for a case
    with hand steps, else None (a unit of its own)."""
    if case is None:
        return None
    group = getattr(case, "sequence_group", None)
    if group is not None:
        return group
    params = getattr(case, "params", None) or {}
    return HAND_STEP_GROUP if params.get("hand_steps") else None


def plan_units(collection: list[str], cases: dict[str, Any]) -> list[list[int]]:
    """Indices of ``collection`` in units, longest estimated bench time first (ties in plan
    order); a sequence group is one unit in plan order."""
    groups: dict[Any, list[int]] = {}
    units: list[list[int]] = []
    for i, nodeid in enumerate(collection):
        group = sequence_group(cases.get(_case_id(nodeid)))
        if group is None:
            units.append([i])
        elif group in groups:
            groups[group].append(i)
        else:
            groups[group] = [i]
            units.append(groups[group])

    def est(unit: list[int]) -> float:
        total = 0.0
        for i in unit:
            case = cases.get(_case_id(collection[i]))
            total += float(getattr(case, "est_bench_s", 0.0) or 0.0) if case else 0.0
        return total

    return sorted(units, key=lambda u: (-est(u), u[0]))


def _failed_collect(message: str) -> pytest.CollectReport:
    return pytest.CollectReport("", "failed", message, [])


class ControllerHooks:
    """The controller's side: scheduler, plan, lost benches, refusals, signals."""

    def __init__(self, config: pytest.Config, session: ControllerSession) -> None:
        self.config = config
        self.session = session
        self.sched: BenchScheduling | None = None
        self.pids: dict[str, int] = {}
        self._previous: dict[int, Any] = {}
        self._signals = 0

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> BenchScheduling:
        self.sched = BenchScheduling(config, log, self.session)
        return self.sched

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[INVOCATION_KEY] = self.session.invocation

    def pytest_testnodeready(self, node: Any) -> None:
        with contextlib.suppress(Exception):
            self.pids[node.gateway.id] = int(node.gateway._rinfo().pid)

    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        self.session.note_collection([_case_id(i) for i in ids])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        node = getattr(report, "node", None)
        if node is None or self.sched is None:
            return
        if any(name == LOST_PROPERTY for name, _ in report.user_properties):
            self.sched.mark_lost(node)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        worker = node.gateway.id
        if self.sched is not None:
            self.sched.node_down(node, error)
        if error is not None:
            self.session.node_errors[worker] = str(error)
        from harness.results import read_run_info

        info = read_run_info(self.session.results_dir) or {}
        for entry in info.get("sessions") or []:
            if (
                isinstance(entry, dict)
                and entry.get("invocation") == self.session.invocation
                and entry.get("worker") == worker
                and entry.get("refused")
            ):
                reason = str((entry.get("end") or {}).get("reason") or "refused")
                self.session.refusals[worker] = f"{entry.get('bench_file')}: {reason}"
                dsession = self.config.pluginmanager.getplugin("dsession")
                if dsession is not None and not dsession.shouldstop:
                    dsession.shouldstop = f"{worker}: {reason}"

    # -- signals ----------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread
                self._previous[signum] = signal.signal(signum, self._forward)

    def _forward(self, signum: int, frame: Any) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self.session.interrupted is None:
            self.session.interrupted = name
        for pid in self.pids.values():
            with contextlib.suppress(OSError):
                os.kill(pid, signum)
        if self._signals > 1:
            raise KeyboardInterrupt  # a second signal: stop waiting for the workers

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.session.refusals:
            for worker, reason in self.session.refusals.items():
                self.config.hook.pytest_collectreport(
                    report=_failed_collect(f"bench of {worker} refused: {reason}")
                )
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        for signum, handler in self._previous.items():
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signum, handler)
        self._previous.clear()


class WorkerHooks:
    """A worker's side: say when the bench is lost, and close the bench session before the
    controller hears this worker has finished."""

    def __init__(self, session: WorkerSession) -> None:
        self.session = session

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        report = yield
        if self.session.lost is not None and report.when == "call":
            report.user_properties.append((LOST_PROPERTY, str(self.session.lost)))
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.session.close()
