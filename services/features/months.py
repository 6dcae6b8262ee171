"""``months.closed``: when the data's latest month moves past a month, that month is closed, one event each.

The rule (unchanged from the single-script version): the first month seen only sets the latest month; every
calendar month the latest month then passes goes to the outbox, with the number of retailers that have data in
it. APPLY keeps each slot group's latest month (``l``) and month counts (``mr``) beside the cells they come from;
``close_through`` then advances the store-wide latest month and fills the outbox in one script (CLOSE), on the
months tag. It is idempotent, and the processor calls it after every batch that raised a group's latest month
and on start (with the highest month any group holds), so a crash between APPLY and CLOSE delays a close, never
loses it. The processor publishes the outbox and trims what was sent.
"""

from __future__ import annotations

from typing import Any

from shared.feature_store.layout import YEAR0, Layout
from shared.feature_store.scripts import FENCE_CHECK
from shared.feature_store.writer import StoreWriter
from shared.keyspace import Script

# KEYS: months fence, latest month, outbox. ARGV: epoch, new latest month index, first month of the counts, counts.
CLOSE = FENCE_CHECK + (r"""
local new = tonumber(ARGV[2])
local latest = redis.call('GET', KEYS[2])
if latest and tonumber(latest) >= new then return {'ok', 0} end
redis.call('SET', KEYS[2], ARGV[2])
if not latest then return {'ok', 0} end
local start, pushed = tonumber(ARGV[3]), 0
for m = tonumber(latest), new - 1 do
  local month = string.format('%04d-%02d', YEAR0 + math.floor(m / 12), m % 12 + 1)
  local retailers = tonumber(ARGV[4 + m - start] or '0')
  redis.call('RPUSH', KEYS[3], cjson.encode({month = month, retailers = retailers}))
  pushed = pushed + 1
end
return {'ok', pushed}
""").replace("YEAR0", str(YEAR0))


class MonthCloser:
    """Advances the store-wide latest month and fills the ``months.closed`` outbox."""

    def __init__(self, client: Any, layout: Layout, writer: StoreWriter) -> None:
        self.redis, self.layout, self.writer = client, layout, writer
        self._close = Script(client, CLOSE)

    def close_through(self, epoch: int, latest: int) -> int:
        """Close every month before ``latest`` (a month index) not closed yet; returns the months queued."""
        latest_key = self.layout.months_key(epoch, "l")
        stored = self.redis.get(latest_key)
        if stored is not None and int(stored) >= latest:
            return 0
        start = latest if stored is None else int(stored)
        counts = self.writer.month_retailers(epoch, list(range(start, latest)))
        keys = [self.layout.months_fence, latest_key, self.layout.months_key(epoch, "outbox")]
        reply = self._close(keys, [epoch, latest, start, *counts])
        return 0 if reply[0] == b"epoch" else int(reply[1])

    def sync(self, epoch: int) -> int:
        """``close_through`` the highest month any group holds (after a restart)."""
        latest = self.writer.latest_month(epoch)
        return self.close_through(epoch, latest) if latest >= 0 else 0

    def outbox(self, epoch: int, count: int = 100) -> list[bytes]:
        return list(self.redis.lrange(self.layout.months_key(epoch, "outbox"), 0, count - 1))

    def ack(self, epoch: int, count: int) -> None:
        self.redis.ltrim(self.layout.months_key(epoch, "outbox"), count, -1)
