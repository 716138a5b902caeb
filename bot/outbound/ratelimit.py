"""The WeChat APIs' rate limits, kept in front of every outbox send.

WeCom counts a group robot's messages over any 60 seconds (20 at most), so this is a sliding
window log rather than a token bucket: a burst up to the limit goes at once, and the next send
waits until the oldest one leaves the window. Never more than the API allows in any window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.config import OutboxConfig
from bot.outbound.outbox import Channel

DEFAULT_RATES = {
    "robot": "20/60",  # WeCom: 20 messages a minute per group robot
    "work_app": "10000/60",  # WeCom: 10,000 calls a minute per API
    "appchat": "10000/60",
    "mp_cs": "5000/60",
}
# Outbox channel → the API whose limit it counts against.
API_OF_CHANNEL: dict[str, str] = {
    Channel.ROBOT: "robot",
    Channel.WORK_APP: "work_app",
    Channel.BCAST_WORK: "work_app",
    Channel.BCAST_APPCHAT: "appchat",
    Channel.MP_CS: "mp_cs",
    Channel.BCAST_MP: "mp_cs",
}
# Each group robot (webhook key) has a limit of its own; the other APIs count for the app.
PER_RECIPIENT: frozenset[str] = frozenset({Channel.ROBOT})
# How long sends take is remembered as the slowest recent one, a little less with every send.
LAG_DECAY = 0.95
MAX_LAG = 2.0


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        count, _, seconds = text.partition("/")
        return cls(int(count), float(seconds))

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    @property
    def window(self) -> float:
        # The server sees a message a little after we send it: keep a small margin so that
        # network jitter never makes it count 21 in its 60 seconds.
        return self.seconds + min(0.5, self.seconds * 0.005)


class SlidingWindowLimiter:
    """``reserve`` counts a send and says how long to wait before it; a send that would wait
    longer than the caller accepts is not counted (the outbox puts it back in the queue)."""

    def __init__(
        self, rates: Mapping[str, Rate], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rates = dict(rates)
        self.clock = clock
        self._logs: dict[tuple[str, str], deque[float]] = {}
        self._lag: dict[str, float] = {}

    def rate_for(self, channel: str) -> Rate | None:
        api = API_OF_CHANNEL.get(channel)
        return None if api is None else self.rates.get(api)

    def key(self, channel: str, recipient: str) -> tuple[str, str] | None:
        api = API_OF_CHANNEL.get(channel)
        if api is None or api not in self.rates:
            return None
        return (api, recipient if api in PER_RECIPIENT else "")

    def reserve(self, channel: str, recipient: str, max_wait: float) -> tuple[bool, float]:
        key = self.key(channel, recipient)
        if key is None:
            return True, 0.0
        rate = self.rates[key[0]]
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = deque(maxlen=rate.count)
        now = self.clock()
        at = now
        if log:
            # The send may go once the count-th latest send has left the window; reserved
            # times stay in order, so a later caller never overtakes an earlier one.
            at = max(at, log[-1])
            if len(log) == rate.count:
                at = max(at, log[0] + rate.window + self._lag.get(key[0], 0.0))
        wait = at - now
        if wait > max_wait:
            return False, wait
        log.append(at)  # the deque drops the oldest: only the last ``count`` matter
        return True, wait

    def sent(self, channel: str, latency: float) -> None:
        """A send got its answer ``latency`` seconds after its slot. WeChat counted it at some
        moment in between, so a send that takes its place in the window keeps that much more
        distance: on a loaded machine or a slow network the window widens, not a 45009."""
        api = API_OF_CHANNEL.get(channel)
        if api is None or api not in self.rates:
            return
        self._lag[api] = max(min(latency, MAX_LAG), self._lag.get(api, 0.0) * LAG_DECAY)


def build_limiter(
    config: OutboxConfig, clock: Callable[[], float] = time.monotonic
) -> SlidingWindowLimiter:
    rates = {api: Rate.parse(text) for api, text in {**DEFAULT_RATES, **config.rate_limits}.items()}
    return SlidingWindowLimiter(rates, clock)
