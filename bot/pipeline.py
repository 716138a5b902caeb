"""The way a message goes: dedup ▸ user and state ▸ dispatcher ▸ save ▸ reply or outbox.

WeChat retries a callback up to three times when it has no answer within 5 s. Each message is
claimed in the database under its platform id (unique), so a retry never runs the handler
again: a retry of a finished message gets the stored reply, one that arrives while the first
is still running waits for it. Past the handler budget the callback answers ``success`` and
the reply goes out later through the outbox (customer-service API).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from bot.dispatch import Context, Dispatcher
from bot.locks import KeyedLocks
from bot.messages import Incoming, Reply
from bot.outbound.outbox import Channel
from bot.services import Services
from bot.storage import repo
from bot.storage.message_store import Begun, Finish, MessageStore

log = logging.getLogger(__name__)

# Which outbox channel carries a late reply for each inbound channel.
LATE_REPLY_CHANNEL = {"mp": Channel.MP_CS, "work": Channel.WORK_APP, "aibot": Channel.AIBOT_URL}
POLL_SECONDS = 0.05


@dataclass
class _Job:
    task: asyncio.Task[list[Reply] | None] | None = None
    finished: bool = False  # the handler has returned; only the bookkeeping is left
    deferred: bool = False  # the caller gave up waiting; replies go through the outbox


class Pipeline:
    def __init__(self, services: Services, dispatcher: Dispatcher) -> None:
        self.services = services
        self.dispatcher = dispatcher
        self.store = MessageStore(services.engine, services.clock)
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._locks = KeyedLocks()
        self._tasks: set[asyncio.Task[list[Reply] | None]] = set()

    async def handle(self, incoming: Incoming, budget: float | None = None) -> list[Reply] | None:
        """Replies to send in the HTTP answer, or None when they will go out later."""
        key = (incoming.channel, incoming.dedup_key)
        job = self._jobs.get(key)
        if job is None:  # a retry arriving while we still work on the message joins it
            job = self._start(incoming, None)
        return await self._wait(job, budget)

    def _start(self, incoming: Incoming, claimed_id: int | None, deferred: bool = False) -> _Job:
        job = _Job(deferred=deferred)
        self._jobs[(incoming.channel, incoming.dedup_key)] = job
        job.task = asyncio.create_task(self._run(incoming, job, claimed_id))
        self._tasks.add(job.task)
        job.task.add_done_callback(self._tasks.discard)
        return job

    async def _wait(self, job: _Job, budget: float | None) -> list[Reply] | None:
        task = job.task
        assert task is not None
        if not task.done():
            # Wait for the task or the budget, whichever comes first; the task runs on either
            # way (and when the caller is cancelled). What asyncio.wait_for(shield(task)) does,
            # without the two extra futures and their callbacks on every message.
            loop = asyncio.get_running_loop()
            woken: asyncio.Future[None] = loop.create_future()

            def wake(_: object = None) -> None:
                if not woken.done():
                    woken.set_result(None)

            timer = loop.call_later(budget, wake) if budget is not None else None
            task.add_done_callback(wake)
            try:
                await woken
            finally:
                if timer is not None:
                    timer.cancel()
                task.remove_done_callback(wake)
        if task.done():
            return task.result()
        if job.finished:
            # The handler is done and only saving is left: wait for it rather than deferring
            # replies the worker could have had now.
            return await asyncio.shield(task)
        job.deferred = True
        return None

    async def _run(
        self, incoming: Incoming, job: _Job, claimed_id: int | None
    ) -> list[Reply] | None:
        try:
            # One message of a conversation at a time: two quick messages of one worker are
            # handled in order, never raced over the same state.
            async with self._locks.hold(incoming.conversation_key):
                begun = await self.store.begin(incoming, claimed_id)
                if begun.message_id is None:
                    return await self._duplicate(incoming, begun, job)
                return await self._dispatch(incoming, begun, job)
        finally:
            self._jobs.pop((incoming.channel, incoming.dedup_key), None)

    async def _dispatch(self, incoming: Incoming, begun: Begun, job: _Job) -> list[Reply]:
        assert begun.message_id is not None and begun.state is not None
        state = begun.state
        replies: list[Reply] = []
        for attempt in (1, 2, 3):
            ctx = Context(
                message=incoming, state=state, services=self.services, user_id=begun.user_id
            )
            try:
                replies = await self.dispatcher.feed(ctx)
            except Exception:
                log.exception("handler failed", extra={"channel": incoming.channel})
                replies = [Reply(self.services.render("error"))]
            job.finished = True
            # Read the flag right after the handler returned, before any await: from here on
            # the waiting side will not defer any more.
            deferred = job.deferred
            saved = await self.store.finish(
                Finish(
                    message_id=begun.message_id,
                    status="deferred" if deferred else "done",
                    replies=[r.to_json() for r in replies],
                    state=state if state.dirty else None,
                    outbox=self._late_rows(incoming, replies) if deferred else [],
                )
            )
            if saved:
                return replies
            # Another instance moved this conversation on; run again on its state.
            log.warning("state conflict", extra={"attempt": attempt})
            state = await self.store.load_state(incoming.conversation_key)
        return replies

    async def _duplicate(self, incoming: Incoming, begun: Begun, job: _Job) -> list[Reply] | None:
        log.info("duplicate message", extra={"channel": incoming.channel, "status": begun.status})
        status, replies = begun.status, begun.replies
        # Another instance is still handling it: wait until it finishes, within reason.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30.0
        while status == "processing" and loop.time() < deadline and not job.deferred:
            await asyncio.sleep(POLL_SECONDS)
            async with self.services.sessions() as session:
                claim = await repo.read_claim(session, incoming)
            status, replies = claim.status, claim.replies
        job.finished = True
        if status == "done":
            return [Reply(r["text"], r.get("type", "text")) for r in replies]
        return None

    def _late_rows(self, incoming: Incoming, replies: list[Reply]) -> list[dict[str, object]]:
        channel = LATE_REPLY_CHANNEL.get(incoming.channel)
        recipient = incoming.reply_url if channel is Channel.AIBOT_URL else incoming.user_id
        if channel is None or not recipient:
            if replies:
                log.warning("late reply has no channel", extra={"channel": incoming.channel})
            return []
        return [
            {
                "dedup_key": f"reply:{incoming.channel}:{incoming.dedup_key}:{n}",
                "channel": channel,
                "recipient": recipient,
                "payload": {"text": reply.text, "type": reply.type},
            }
            for n, reply in enumerate(replies)
        ]

    async def recover(self, older_than: timedelta = timedelta(minutes=2)) -> int:
        """Finish messages a crashed process had claimed but not answered: they are handled
        now and their replies go out through the outbox, so nothing a worker said is lost."""
        now = self.services.clock()
        async with self.services.sessions() as session:
            stale = await repo.stale_messages(session, now - older_than)
        recovered = 0
        for row in stale:
            async with self.services.sessions.begin() as session:
                if not await repo.reclaim_message(session, row, now):
                    continue  # another instance took it
            incoming = Incoming.from_stored(
                row.channel, row.dedup_key, row.conversation_key, row.kind, row.text
            )
            if incoming is None:
                continue
            job = self._start(incoming, row.id, deferred=True)
            assert job.task is not None
            await job.task
            recovered += 1
        if recovered:
            log.warning("recovered unfinished messages", extra={"count": recovered})
        return recovered

    async def drain(self) -> None:
        """Let running handlers finish (on shutdown) so no claimed message is left behind."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()
