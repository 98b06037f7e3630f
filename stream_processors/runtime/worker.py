"""``seismo worker``: the steps on the shared runtime, one role or all, one process or many.

* ``--role normalize|correlate|score`` runs that step; ``all`` (the default) runs all three.
* ``--processes N`` runs N consumers of each step (one process each: the GIL would make
  threads share one core).  Each step is one consumer group, so N processes on N
  partitions, on this machine or others, share its work; a process joining or leaving
  moves partitions, and the runtime checkpoints before it gives one up.

One step in one process runs right here.  Anything more makes this process a
supervisor: each consumer is a child (``python -m stream_processors.runtime.worker
--role STEP --index I``) that gets SIGTERM when the supervisor dies, however it dies;
SIGTERM/SIGINT to the supervisor stops every child gracefully (each checkpoints);
if a child exits on its own, the supervisor stops the others and exits non-zero, so a
supervisor of its own (Kubernetes, docker-compose) restarts the set.

Steps sharing the machine (``--role all``): the normalize children start with
``SEISMO_WORKER_UPSTREAM_NICE`` (10) added to their niceness, so on busy cores the later
steps run first and keep up with it; otherwise a backlog piles up between the steps and the
last step finishes alone on one core while the other idles (docs/decisions.md).

Metrics: ``--metrics-port`` (``SEISMO_WORKER_METRICS_PORT``) serves ``/metrics``, the
sum over every child (prometheus-client's multiprocess mode).  Topics are created
(idempotent) while the children start; a child consumes once its supervisor says "go" on its
stdin.  Everything blocks until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from seismo.settings import Settings
from seismo.topics import ensure_topics
from stream_processors.runtime.metrics import MULTIPROC_ENV, serve
from stream_processors.runtime.state import MemoryStateStore, RedisStateStore, StateStore
from stream_processors.runtime.step import Step

if TYPE_CHECKING:
    from stream_processors.runtime.loop import StepRuntime

log = logging.getLogger(__name__)
Role = Literal["all", "normalize", "correlate", "score"]
STEPS: tuple[Role, ...] = ("normalize", "correlate", "score")
ROLES: tuple[Role, ...] = ("all", *STEPS)
GRACE_S = 30.0
# A step still running this long after it was told to stop writes every thread's stack to stderr
# (it is about to be killed: the stack says what it waited on).
STALL_DUMP_S = GRACE_S * 2 / 3
# Writes a step's stacks at once, even while Python's own handlers wait for a call in C to return:
# the supervisor sends it to a child that did not stop in time, before the kill.
STACK_SIGNAL = signal.SIGUSR1
_PR_SET_PDEATHSIG = 1
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def state_store(settings: Settings, stopping: Callable[[], bool] | None = None) -> StateStore:
    """The configured state backend of the steps (Redis unless ``state_backend`` is memory).

    ``stopping`` lets a Redis call that waits for an unreachable server give up when the
    process is asked to stop."""
    if settings.state_backend == "memory":
        log.warning("step state is in memory: a restarted worker starts from scratch")
        return MemoryStateStore()
    return RedisStateStore.from_settings(settings, stopping=stopping)


def build_step(settings: Settings, name: str) -> Step:
    """The adapter of step ``name`` (imports only what that step needs)."""
    if name == "normalize":
        from stream_processors.normalize.adapter import NormalizeAdapter

        return NormalizeAdapter.from_settings(settings)
    if name == "correlate":
        from stream_processors.correlate.adapter import CorrelateAdapter

        return CorrelateAdapter.from_settings(settings)
    if name == "score":
        from stream_processors.score.adapter import ScoreAdapter

        return ScoreAdapter.from_settings(settings)
    raise ValueError(f"unknown step {name!r}: use one of {', '.join(STEPS)}")


def limit_native_threads(threads: int) -> None:
    """Let native libraries use ``threads`` threads in this process.

    OpenBLAS would otherwise start a thread per core for the embedder's small matrix
    products, and its idle threads spin: with three steps sharing two cores, the normalize
    step spent six times the CPU on a cold template backlog (docs/decisions.md).  The
    environment covers libraries loaded later (faiss's OpenMP, torch); threadpoolctl
    those already loaded."""
    from threadpoolctl import threadpool_limits

    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    threadpool_limits(limits=threads)


def run_step(
    settings: Settings, name: str, index: int = 0, nice: int = 0, ready: Callable[[], bool] | None = None,
) -> None:
    """Run one consumer of step ``name`` here until SIGINT/SIGTERM, then checkpoint and return.

    ``nice`` is added to the process's niceness once the step is built (its start-up, the
    imports and the model, runs at full priority: the later steps wait for its output).
    ``ready`` (when given) is called once the step is built and blocks until its topics
    exist; False means "do not start" (the supervisor is stopping or could not make them)."""
    stop = threading.Event()
    built: list[StepRuntime] = []
    faulthandler.register(STACK_SIGNAL, all_threads=True)

    def on_signal(*_: object) -> None:  # a stop asked for during start-up is honoured once built
        if not stop.is_set():
            faulthandler.dump_traceback_later(STALL_DUMP_S, exit=False)
        stop.set()
        for runtime in built:
            runtime.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    limit_native_threads(settings.worker_native_threads)
    from stream_processors.runtime.loop import StepRuntime

    runtime = StepRuntime(settings, build_step(settings, name), state_store(settings, stop.is_set),
                          instance=index)
    built.append(runtime)
    if not stop.is_set() and ready is not None and not ready():
        stop.set()
    if stop.is_set():
        log.info("%s runtime stopped during start-up", name)
        return
    if nice:
        os.nice(nice)
    log.info("%s runtime consuming as group %s", name, runtime.group_id)
    runtime.run()  # the stack dump stays armed past here: a stall in the process's exit shows too
    if runtime.abandoned:  # a commit is stuck in librdkafka: destroying the consumer at exit would wait on it
        log.warning("%s runtime leaving without closing its consumer (a commit did not return)", name)
        logging.shutdown()
        os._exit(0)


def run_worker(
    settings: Settings, role: Role = "all", processes: int | None = None, metrics_port: int | None = None
) -> None:
    """Run ``role`` until SIGINT/SIGTERM.  Blocks; raises SystemExit(1) if a child died."""
    processes = processes or settings.worker_processes
    metrics_port = metrics_port if metrics_port is not None else settings.worker_metrics_port
    steps = STEPS if role == "all" else (role,)
    if len(steps) == 1 and processes == 1:
        ensure_topics(settings)
        if metrics_port is not None:
            serve(metrics_port)
        run_step(settings, steps[0])
        return
    # Steps sharing this machine: the first step yields the CPU to the steps after it.
    nice = settings.worker_upstream_nice if len(steps) > 1 else 0
    # The children start (imports, models) while this process makes the topics.
    Supervisor([(s, i) for s in steps for i in range(processes)], metrics_port,
               nice={"normalize": nice}, prepare=lambda: ensure_topics(settings)).run()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Runs one child process per ``(step, index)`` and stops them together."""

    def __init__(
        self, members: list[tuple[str, int]], metrics_port: int | None, nice: dict[str, int] | None = None,
        prepare: Callable[[], object] | None = None,
    ) -> None:
        self.members = members
        self.metrics_port = metrics_port
        self.nice = nice or {}  # step -> niceness its children start with
        # Runs while the children start; they consume only once it returned ("go" on stdin).
        self.prepare = prepare
        self._stopping = threading.Event()
        self._failed: list[str] = []
        self._children: dict[tuple[str, int], subprocess.Popen[bytes]] = {}

    def run(self) -> None:
        metrics_dir = tempfile.mkdtemp(prefix="seismo-metrics-")
        env = {**os.environ, MULTIPROC_ENV: metrics_dir}
        try:
            os.environ[MULTIPROC_ENV] = metrics_dir
            if self.metrics_port is not None:
                serve(self.metrics_port)
            # Handlers first: a stop asked for while the children start is a graceful stop.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self._stopping.set())
            preexec = _die_with_parent if sys.platform.startswith("linux") else None
            for step, index in self.members:
                if self._stopping.is_set():
                    break
                self._children[(step, index)] = subprocess.Popen(
                    [sys.executable, "-m", "stream_processors.runtime.worker", "--role", step,
                     "--index", str(index), "--nice", str(self.nice.get(step, 0)), "--wait-go"],
                    env=env, preexec_fn=preexec, stdin=subprocess.PIPE,
                )
            if self.prepare is not None and not self._stopping.is_set():
                self.prepare()
            self._go()
            for member, child in self._children.items():
                threading.Thread(target=self._watch, args=(member, child), daemon=True).start()
            log.info("worker running %s", ", ".join(f"{s}#{i}" for s, i in self.members))
            self._stopping.wait()
        finally:
            self._stopping.set()
            self._stop_children()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if self._failed:
            raise SystemExit(1)

    def _watch(self, member: tuple[str, int], child: subprocess.Popen[bytes]) -> None:
        code = child.wait()
        if not self._stopping.is_set():
            step, _ = member
            log.error("the %s runtime exited with %s; stopping the worker", step, code)
            self._failed.append(step)
            self._stopping.set()

    def _go(self) -> None:
        """Tell every child to start consuming (or, when stopping, to return once built)."""
        word = b"" if self._stopping.is_set() else b"go\n"
        for child in self._children.values():
            if child.stdin is None or child.stdin.closed:
                continue
            try:
                child.stdin.write(word)
                child.stdin.close()
            except OSError:  # the child is gone already: its watcher reports it
                pass

    def _stop_children(self) -> None:
        for child in self._children.values():
            if child.poll() is None:
                child.terminate()
        self._go()  # a child still waiting for "go" reads the end of its stdin and returns
        for (step, index), child in self._children.items():
            try:
                child.wait(GRACE_S)
            except subprocess.TimeoutExpired:
                log.error("the %s#%d runtime did not stop within %.0fs; its threads' stacks follow, then it "
                          "is killed", step, index, GRACE_S)
                child.send_signal(STACK_SIGNAL)  # faulthandler in the child writes them to stderr
                try:
                    child.wait(1.0)
                except subprocess.TimeoutExpired:
                    child.kill()
                child.wait()


def main(argv: list[str] | None = None) -> None:
    """Entry of a supervised child: ``python -m stream_processors.runtime.worker --role STEP``."""
    parser = argparse.ArgumentParser(description="One consumer of one Seismo step (run by `seismo worker`).")
    parser.add_argument("--role", choices=STEPS, required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--nice", type=int, default=0, help="niceness to add (yield the CPU to later steps)")
    parser.add_argument("--wait-go", action="store_true",
                        help='consume only after reading "go" on stdin (the supervisor makes the topics)')
    args = parser.parse_args(argv)
    settings = Settings()
    from seismo.logs import setup_logging

    setup_logging(settings.log_level, settings.log_format)
    run_step(settings, args.role, args.index, nice=args.nice, ready=_read_go if args.wait_go else None)


def _read_go() -> bool:
    """Block until the supervisor writes "go" (True) or closes stdin without it (False)."""
    return sys.stdin.buffer.readline().strip() == b"go"


if __name__ == "__main__":
    main()
