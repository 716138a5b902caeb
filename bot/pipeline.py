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
from dataclasses import dataclass, field
from datetime import timedelta

from bot.dispatch import Context, Dispatcher
from bot.locks import KeyedLocks
from bot.messages import Incoming, Reply
from bot.services import Services
from bot.storage import repo

log = logging.getLogger(__name__)

# Which outbox channel carries a late reply for each inbound channel.
LATE_REPLY_CHANNEL = {"mp": "mp_cs", "work": "work_app", "aibot": "aibot_url"}


@dataclass
class _Job:
    task: asyncio.Task[list[Reply]] | None = None
    finished: bool = False  # the handler has returned; only the bookkeeping is left
    deferred: bool = False  # the caller gave up waiting; replies go through the outbox
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Pipeline:
    def __init__(self, services: Services, dispatcher: Dispatcher) -> None:
        self.services = services
        self.dispatcher = dispatcher
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._locks = KeyedLocks()
        self._tasks: set[asyncio.Task[list[Reply]]] = set()

    async def handle(self, incoming: Incoming, budget: float | None = None) -> list[Reply] | None:
        """Replies to send in the HTTP answer, or None when they will go out later."""
        key = (incoming.channel, incoming.dedup_key)
        running = self._jobs.get(key)
        if running is not None:
            return await self._wait(running, budget)

        async with self.services.sessions.begin() as session:
            claim = await repo.claim_message(session, incoming)
        if claim.message_id is None:
            return await self._duplicate(incoming, claim, budget)

        job = _Job()
        self._jobs[key] = job
        job.task = asyncio.create_task(self._run(incoming, claim.message_id, job))
        self._tasks.add(job.task)
        job.task.add_done_callback(self._tasks.discard)
        return await self._wait(job, budget)

    async def _wait(self, job: _Job, budget: float | None) -> list[Reply] | None:
        assert job.task is not None
        try:
            return await asyncio.wait_for(asyncio.shield(job.task), budget)
        except TimeoutError:
            if job.finished:
                # The handler is done and only saving is left: wait for it rather than
                # deferring replies the worker could have had now.
                return await asyncio.shield(job.task)
            job.deferred = True
            return None

    async def _duplicate(
        self, incoming: Incoming, claim: repo.Claim, budget: float | None
    ) -> list[Reply] | None:
        log.info("duplicate message", extra={"channel": incoming.channel, "status": claim.status})
        # Another instance is still handling it: poll until it finishes or the budget ends.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (budget if budget is not None else 30.0)
        while claim.status == "processing" and loop.time() < deadline:
            await asyncio.sleep(0.05)
            async with self.services.sessions() as session:
                claim = await repo.read_claim(session, incoming)
        if claim.status == "done":
            return [Reply(r["text"], r.get("type", "text")) for r in claim.replies]
        return None

    async def _run(self, incoming: Incoming, message_id: int, job: _Job) -> list[Reply]:
        key = (incoming.channel, incoming.dedup_key)
        try:
            replies = await self._dispatch(incoming)
        except Exception:
            log.exception("handler failed", extra={"channel": incoming.channel})
            replies = [Reply(self.services.render("error"))]
        finally:
            job.finished = True
        try:
            # Read the flag right after the handler returned, before any await: from here on
            # the waiting side will not defer any more.
            deferred = job.deferred
            stored = [r.to_json() for r in replies]
            async with self.services.sessions.begin() as session:
                await repo.finish_message(
                    session, message_id, "deferred" if deferred else "done", stored
                )
                if deferred:
                    await self._enqueue_late(session, incoming, replies)
            return replies
        finally:
            self._jobs.pop(key, None)
            job.done.set()

    async def _enqueue_late(
        self, session: object, incoming: Incoming, replies: list[Reply]
    ) -> None:
        channel = LATE_REPLY_CHANNEL.get(incoming.channel)
        recipient = incoming.reply_url if channel == "aibot_url" else incoming.user_id
        if channel is None or not recipient:
            log.warning("late reply has no channel", extra={"channel": incoming.channel})
            return
        for n, reply in enumerate(replies):
            await repo.enqueue(
                session,  # type: ignore[arg-type]
                dedup_key=f"reply:{incoming.channel}:{incoming.dedup_key}:{n}",
                channel=channel,
                recipient=recipient,
                payload={"text": reply.text, "type": reply.type},
            )

    async def _dispatch(self, incoming: Incoming) -> list[Reply]:
        # One message of a conversation at a time: two quick messages of one worker are
        # handled in order, never raced over the same state.
        async with self._locks.hold(incoming.conversation_key):
            for attempt in (1, 2):
                async with self.services.sessions.begin() as session:
                    user_id = await repo.touch_user(session, incoming, self.services.clock())
                    state = await repo.load_conversation(session, incoming.conversation_key)
                ctx = Context(
                    message=incoming, state=state, services=self.services, user_id=user_id
                )
                replies = await self.dispatcher.feed(ctx)
                if not state.dirty:
                    return replies
                try:
                    async with self.services.sessions.begin() as session:
                        await repo.save_conversation(session, state)
                    return replies
                except repo.StateConflict:
                    # Another instance moved this conversation on; run again on its state.
                    log.warning("state conflict", extra={"attempt": attempt})
            return replies

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
                    continue
            incoming = Incoming.from_stored(
                row.channel, row.dedup_key, row.conversation_key, row.kind, row.text
            )
            if incoming is None:
                continue
            job = _Job(deferred=True)
            job.task = asyncio.create_task(self._run(incoming, row.id, job))
            await job.task
            recovered += 1
        if recovered:
            log.warning("recovered unfinished messages", extra={"count": recovered})
        return recovered

    async def drain(self) -> None:
        """Let running handlers finish (on shutdown) so no claimed message is left behind."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
