"""Where validation runs: worker processes fed over pipes, or (for tests) a thread pool.

Both pools have the same small API, used only from the event loop:
`submit(job)` returns an asyncio future of the job's body verdicts, `close()`
waits for outstanding work (bounded) and stops the workers.

The process pool is the production one.  Each worker is a child process
(`python -m ktbench.proxy.worker`) that reads jobs from its stdin and writes
verdicts to its stdout.  On the proxy side that is ordinary non-blocking
asyncio pipe I/O, answers parsed right in the pipe callback: no feeder or
manager threads, so nothing competes with the event loop for the GIL - `concurrent.futures.ProcessPoolExecutor` costs a few
hundred microseconds of loop time per task for exactly that reason.  Workers
run at a lower CPU priority (`nice`) so that on a busy machine the traffic
itself goes first and validation catches up afterwards.  A worker that dies
fails its outstanding jobs (they become `validator.crash` findings) and is
restarted on demand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ktbench.proxy import worker
from ktbench.proxy.model import BodyVerdict, FlowJob, job_to_wire, verdicts_from_wire

log = logging.getLogger(__name__)

MAX_RESTARTS = 5


class WorkerDied(RuntimeError):
    """A validation worker process ended while jobs were outstanding."""


class _Worker(asyncio.SubprocessProtocol):
    """One worker process; its answers are parsed right in the pipe callback (no reader task)."""

    def __init__(self, pool: ProcessPool) -> None:
        self.pool = pool
        self.transport: asyncio.SubprocessTransport | None = None
        self.stdin: asyncio.WriteTransport | None = None
        self.outstanding: set[int] = set()
        self.outgoing: list[bytes] = []  # frames waiting for the next write
        self.alive = True
        self.exited: asyncio.Future = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.stdin = self.transport.get_pipe_transport(0)  # type: ignore[union-attr,assignment]

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 1:
            return
        self._buffer += data
        try:
            for frame in worker._complete_frames(self._buffer):
                seq, verdicts = pickle.loads(frame)
                self.outstanding.discard(seq)
                self.pool._resolve(seq, verdicts_from_wire(verdicts))
        except Exception:  # garbage on the pipe: this worker cannot be trusted any more
            log.exception("ktbench: unreadable answer from a validation worker")
            self.alive = False
            if self.transport is not None:
                self.transport.kill()

    def process_exited(self) -> None:
        self.alive = False  # no new jobs; answers still in the pipe are read before connection_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self.alive = False
        code = self.transport.get_returncode() if self.transport is not None else None
        if self.outstanding:
            died = WorkerDied(f"validation worker exited with code {code}")
            for seq in list(self.outstanding):
                self.pool._fail(seq, died)
            self.outstanding.clear()
        if not self.exited.done():
            self.exited.set_result(code)

    def write(self) -> None:
        frames, self.outgoing = self.outgoing, []
        if frames and self.stdin is not None and not self.stdin.is_closing():
            self.stdin.write(b"".join(frames))


class ProcessPool:
    """N validation worker processes, fed by the event loop over pipes."""

    def __init__(self, workers: int = 1, validator: str = worker.DEFAULT_VALIDATOR,
                 suppressions: str | None = None, nice: int = 10) -> None:
        if callable(validator):
            raise ValueError("worker processes need the validator as an import path 'module:function'")
        self.size = max(1, workers)
        self.validator = validator
        self.suppressions = suppressions
        self.nice = nice
        self._workers: list[_Worker] = []
        self._futures: dict[int, asyncio.Future] = {}
        self._queued: list[tuple[int, FlowJob]] = []  # jobs submitted before the workers are up
        self._seq = 0
        self._starting: asyncio.Task | None = None
        self._restarts = 0
        self._spawn_failed = False
        self._closed = False

    @property
    def outstanding(self) -> int:
        return len(self._futures)

    def _command(self) -> list[str]:
        command = [sys.executable, "-m", "ktbench.proxy.worker", "--validator", self.validator,
                   "--nice", str(self.nice)]
        if self.suppressions:
            command += ["--suppressions", self.suppressions]
        return command

    async def _spawn(self) -> _Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the validator imports as it does here
        loop = asyncio.get_running_loop()
        _transport, protocol = await loop.subprocess_exec(
            lambda: _Worker(self), *self._command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None, env=env)
        return protocol

    async def start(self) -> None:
        """Start the worker processes (also done on the first submit)."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        try:
            while len([w for w in self._workers if w.alive]) < self.size:
                self._workers.append(await self._spawn())
        except Exception as exc:  # no worker: every waiting job gets a verdict saying why
            log.error("ktbench: cannot start a validation worker: %s", exc)
            self._spawn_failed = True
            queued, self._queued = self._queued, []
            for seq, _job in queued:
                self._fail(seq, WorkerDied(f"cannot start a validation worker: {exc}"))
            return
        queued, self._queued = self._queued, []
        for seq, job in queued:
            self._send(seq, job)

    def submit(self, job: FlowJob) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        if self._closed:
            raise RuntimeError("the validation pool is closed")
        self._seq += 1
        future = loop.create_future()
        self._futures[self._seq] = future
        if self._starting is None or not self._starting.done():
            self._queued.append((self._seq, job))
            if self._starting is None:
                self._starting = asyncio.ensure_future(self._start())
        else:
            self._send(self._seq, job)
        return future

    def _send(self, seq: int, job: FlowJob) -> None:
        alive = [w for w in self._workers if w.alive]
        if not alive:
            if self._restarts >= MAX_RESTARTS or self._spawn_failed:
                self._fail(seq, WorkerDied(f"validation workers keep dying ({self._restarts} restarts); "
                                           "giving up"))
                return
            self._restarts += 1
            self._queued.append((seq, job))
            self._starting = asyncio.ensure_future(self._start())
            return
        target = min(alive, key=lambda w: len(w.outstanding))
        try:
            frame = worker.encode_frame((seq, job_to_wire(job)))
        except Exception as exc:  # e.g. an unpicklable job
            self._fail(seq, exc)
            return
        target.outstanding.add(seq)
        target.outgoing.append(frame)
        if len(target.outgoing) == 1:  # jobs submitted in the same loop iteration go out in one write
            asyncio.get_running_loop().call_soon(target.write)

    def _resolve(self, seq: int, verdicts: tuple[BodyVerdict, ...]) -> None:
        future = self._futures.pop(seq, None)
        if future is not None and not future.done():
            future.set_result(verdicts)

    def _fail(self, seq: int, exc: BaseException) -> None:
        future = self._futures.pop(seq, None)
        if future is not None and not future.done():
            future.set_exception(exc)

    async def close(self, timeout: float = 30.0) -> None:
        """Wait (at most `timeout` s) for outstanding jobs, then stop the workers."""
        self._closed = True
        if self._futures:
            await asyncio.wait(list(self._futures.values()), timeout=timeout)
        for w in self._workers:
            w.write()
            if w.stdin is not None and not w.stdin.is_closing():
                w.stdin.close()  # EOF: the worker leaves its loop
        for w in self._workers:
            try:
                await asyncio.wait_for(asyncio.shield(w.exited), 5)
            except asyncio.TimeoutError:
                if w.transport is not None:
                    w.transport.kill()
                await w.exited
            if w.transport is not None:
                w.transport.close()
        for seq in list(self._futures):
            self._fail(seq, TimeoutError("validation did not finish before shutdown"))


class ThreadPool:
    """The same API on a thread pool: accepts any callable as validator (for tests and debugging)."""

    def __init__(self, workers: int = 1, validator: str | Callable[..., Any] = worker.DEFAULT_VALIDATOR,
                 suppressions: str | None = None) -> None:
        self.validator = validator
        self.suppressions = suppressions
        self._executor = ThreadPoolExecutor(max(1, workers), thread_name_prefix="ktbench-validate")
        self._futures: set[asyncio.Future] = set()
        self._closed = False

    @property
    def outstanding(self) -> int:
        return len(self._futures)

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, worker.warm_up, self.validator,
                                                         self.suppressions)

    def submit(self, job: FlowJob) -> asyncio.Future:
        if self._closed:
            raise RuntimeError("the validation pool is closed")
        future = asyncio.get_running_loop().run_in_executor(
            self._executor, worker.validate_flow, job, self.validator, self.suppressions)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)
        return future

    async def close(self, timeout: float = 30.0) -> None:
        self._closed = True
        if self._futures:
            await asyncio.wait(list(self._futures), timeout=timeout)
        for future in list(self._futures):
            future.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


def verdicts_or_crash(future: asyncio.Future, job: FlowJob) -> tuple[BodyVerdict, ...]:
    """The verdicts of a finished job; a failed or cancelled job becomes crash verdicts."""
    from ktbench.proxy.model import crash_verdict

    if future.cancelled():
        exc: BaseException = TimeoutError("validation did not finish before shutdown")
    else:
        exc = future.exception()  # type: ignore[assignment]
        if exc is None:
            return future.result()
    return tuple(crash_verdict(body.direction, exc) for body in job.bodies)
