"""Validate FHIR bodies off the event loop, without ever touching the flow.

The HL7 validator costs seconds per call; a proxy that validated inline would
slow every exchange down by that much.  This addon's `response` hook only
notes the flow and returns; right after mitmproxy has sent the response on
(a `call_soon` callback), the raw, still content-encoded bodies - immutable
`bytes`, so the worker sees exactly what crossed the wire and the flow keeps
exactly what it had - go to a worker pool as one job per flow (see `pool`).

Workers are separate processes by default: a validation thread would compete
with the event loop for the GIL and add latency to unrelated flows.  When a
worker answers, the verdict is announced on the event loop as the
`ktbench_flow_validated` event (see `ktbench.proxy.hooks`).

Nothing is lost silently: a validator exception becomes a `validator.crash`
finding, a dead worker likewise, a full backlog yields a `dropped` verdict, and
at shutdown the addon waits for outstanding work (bounded by `drain_timeout`);
whatever is still unfinished then has no verdict and the summary reports it
as lost.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import ctx, http

from ktbench.proxy import worker
from ktbench.proxy.fhir_filter import is_fhir
from ktbench.proxy.hooks import FlowValidatedHook
from ktbench.proxy.model import (
    DROPPED,
    REQUEST,
    RESPONSE,
    SKIPPED,
    BodyJob,
    BodyVerdict,
    FlowInfo,
    FlowJob,
    FlowVerdict,
    crash_verdict,
)
from ktbench.proxy.pool import ProcessPool, ThreadPool, verdicts_or_crash

log = logging.getLogger(__name__)

SUBMITTED_KEY = "ktbench.submitted"
_NOT_FHIR_BODY_TYPES = ("application/x-www-form-urlencoded", "multipart/")


def body_job(direction: str, message: http.Message | None) -> BodyJob | BodyVerdict:
    """The job for one side of a flow, or a `skipped` verdict if there is nothing to validate."""
    if message is None:
        return BodyVerdict(direction, SKIPPED, reason=f"no {direction}")
    raw = message.raw_content
    if raw is None:
        return BodyVerdict(direction, SKIPPED, reason="body was streamed, not buffered")
    if not raw:
        return BodyVerdict(direction, SKIPPED, reason="no body")
    content_type = message.headers.get("content-type")
    if content_type and content_type.lower().startswith(_NOT_FHIR_BODY_TYPES):
        return BodyVerdict(direction, SKIPPED, reason=f"not a FHIR body ({content_type.split(';')[0]})")
    return BodyJob(direction, raw, content_type, message.headers.get("content-encoding"))


def flow_info(flow: http.HTTPFlow) -> FlowInfo:
    return FlowInfo(
        flow_id=flow.id,
        method=flow.request.method,
        url=flow.request.url,
        status=flow.response.status_code if flow.response is not None else None,
        authorization=flow.request.headers.get("authorization"),
    )


def subscribers(chain: list, hook_name: str) -> list[Callable[..., Any]]:
    """The bound `hook_name` methods of the addons in `chain` (and their sub-addons), in chain order."""
    from mitmproxy.addonmanager import traverse

    found = []
    for addon in traverse(chain):
        handler = getattr(addon, hook_name, None)
        if callable(handler):
            found.append(handler)
    return found


class ValidatingAddon:
    """Feeds the bodies of FHIR flows to a worker pool and announces each verdict."""

    def __init__(
        self,
        *,
        kt: int | None = None,
        validator: str | Callable[..., Any] = worker.DEFAULT_VALIDATOR,
        suppressions: str | None = None,
        executor: str = "process",
        workers: int = 1,
        max_backlog: int = 10_000,
        drain_timeout: float = 60.0,
        nice: int = 10,
        batch_window: float = 0.02,
    ) -> None:
        if executor == "process":
            self.pool: ProcessPool | ThreadPool = ProcessPool(workers, validator, suppressions, nice)  # type: ignore[arg-type]
        elif executor == "thread":
            self.pool = ThreadPool(workers, validator, suppressions)
        else:
            raise ValueError("executor must be 'process' or 'thread'")
        self.kt = kt
        self.max_backlog = max_backlog
        self.drain_timeout = drain_timeout
        self.batch_window = batch_window
        self._outbox: list[http.HTTPFlow] = []
        self._flush_handle: asyncio.Handle | None = None
        self._pending: dict[str, asyncio.Future] = {}
        self._announcing: set[asyncio.Future] = set()
        self._subscribers: list[Callable[[FlowVerdict], Any]] | None = None
        self._chain_size = 0
        self._closed = False
        self._start_task: asyncio.Future | None = None
        self.submitted = 0
        self.dropped = 0

    @property
    def backlog(self) -> int:
        return len(self._pending) + len(self._outbox)

    def running(self) -> None:
        # Start the workers now, so they have imported the validator before traffic arrives;
        # not awaited: the proxy does not wait for its validators to start.
        self._start_task = asyncio.ensure_future(self.pool.start())

    # -- hand-off: the hot path does nearly nothing ---------------------------------------------------
    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            self._enqueue(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._enqueue(flow)

    def _enqueue(self, flow: http.HTTPFlow) -> None:
        if self._closed or not is_fhir(flow) or flow.metadata.get(SUBMITTED_KEY):
            return
        flow.metadata[SUBMITTED_KEY] = True
        self._outbox.append(flow)
        if self._flush_handle is None:
            # Hand off after mitmproxy has written the response out, and collect the flows of a short
            # window into one batch: one pipe write and one worker wake-up instead of one per flow.
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.batch_window, self._flush) if self.batch_window > 0 \
                else loop.call_soon(self._flush)

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        outbox, self._outbox = self._outbox, []
        for flow in outbox:
            self._submit(flow)

    def _submit(self, flow: http.HTTPFlow) -> None:
        info = flow_info(flow)
        parts = [body_job(REQUEST, flow.request), body_job(RESPONSE, flow.response)]
        if flow.response is None and flow.error is not None:
            parts[1] = BodyVerdict(RESPONSE, SKIPPED, reason=f"no response: {flow.error.msg}"[:300])
        jobs = tuple(p for p in parts if isinstance(p, BodyJob))
        if not jobs:
            self._announce(FlowVerdict(info, tuple(p for p in parts if isinstance(p, BodyVerdict))))
            return
        if len(self._pending) >= self.max_backlog:
            self.dropped += 1
            reason = f"validation backlog full ({self.max_backlog} flows)"
            self._announce(self._assemble(info, parts, tuple(BodyVerdict(j.direction, DROPPED, reason=reason)
                                                             for j in jobs)))
            return
        job = FlowJob(flow.id, jobs, self.kt)
        try:
            future = self.pool.submit(job)
        except Exception as exc:  # a closed or broken pool: say so for this flow
            self._announce(self._assemble(info, parts, tuple(crash_verdict(j.direction, exc) for j in jobs)))
            return
        self.submitted += 1
        self._pending[flow.id] = future
        future.add_done_callback(lambda fut: self._finished(info, parts, job, fut))

    @staticmethod
    def _assemble(info: FlowInfo, parts: list, answered: tuple[BodyVerdict, ...]) -> FlowVerdict:
        by_direction = {v.direction: v for v in answered}
        bodies = tuple(by_direction.get(p.direction, p) if isinstance(p, BodyJob) else p for p in parts)
        return FlowVerdict(info, bodies)

    def _finished(self, info: FlowInfo, parts: list, job: FlowJob, future: asyncio.Future) -> None:
        if self._closed:
            return  # finished after the shutdown deadline: the summary counts the flow as lost
        self._pending.pop(info.flow_id, None)
        self._announce(self._assemble(info, parts, verdicts_or_crash(future, job)))

    def _announce(self, verdict: FlowVerdict) -> None:
        """Deliver `ktbench_flow_validated` to every addon that defines it.

        Equivalent to `addons.trigger_event(FlowValidatedHook(verdict))`, but it walks
        only the subscribers instead of all ~40 addons of a proxy: this runs on the
        event loop once per flow, and a full dispatch costs ~0.1 ms there.
        """
        chain = ctx.master.addons.chain
        if self._subscribers is None or self._chain_size != len(chain):
            self._subscribers = subscribers(chain, FlowValidatedHook.name)
            self._chain_size = len(chain)
        for handler in self._subscribers:
            try:
                result = handler(verdict)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._announcing.add(task)
                    task.add_done_callback(self._announcing.discard)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("ktbench: %s failed", getattr(handler, "__qualname__", handler))

    # -- shutdown -------------------------------------------------------------------------------
    async def done(self) -> None:
        self._flush()
        if self._pending:
            await asyncio.wait(list(self._pending.values()), timeout=self.drain_timeout)
            await asyncio.sleep(0)  # let the done-callbacks of the last jobs run
        if self._announcing:
            await asyncio.gather(*list(self._announcing), return_exceptions=True)
        if self._pending:
            log.warning("ktbench: %d flow(s) were still being validated at shutdown", len(self._pending))
        self._closed = True
        await self.pool.close(timeout=0)
