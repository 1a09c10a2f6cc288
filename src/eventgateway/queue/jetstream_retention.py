"""Retention of the JetStream delivery log: settled histories go by age and count, and
settles whose record a crash lost are logged (:mod:`.jetstream_reconcile`)."""

from __future__ import annotations

import logging

from eventgateway.queue.jetstream_log import JetStreamLogMixin, translated
from eventgateway.queue.jetstream_reconcile import lost_settles

__all__ = ["JetStreamRetentionMixin"]

logger = logging.getLogger(__name__)


class JetStreamRetentionMixin(JetStreamLogMixin):
    """``enforce_retention`` over the log its base reads; the queue provides the state."""

    _reconciled_to = 0  # where retention's last look for lost settles stopped

    async def enforce_retention(self, *, max_age_s: float, max_events: int) -> int:
        """See :meth:`DeliveryLog.enforce_retention`. Reads the whole log (bounded by
        ``scan_limit``). Dead letters, in their own stream, are never touched here."""
        js, names = self._jetstream(), self.names
        cutoff = self._clock() - max_age_s
        async with translated("enforce the delivery log's retention"):
            events, truncated = await self._history_of(f"{names.prefix}.log.>")
            # Only events whose every delivery was delivered may go, and only they count.
            removable = [
                e for e in events if all(d.state == "delivered" for d in e.deliveries.values())
            ]
            beyond_count = len(removable) - max(max_events, 0)
            doomed = [
                e for index, e in enumerate(removable) if index < beyond_count or e.last_at < cutoff
            ]
            for e in doomed:
                await js.purge_stream(names.log_stream, subject=e.subject)
            # Settles whose record a crash lost would keep their events pending forever.
            # Not from a partial read: its newest settles are missing, not lost (they were
            # logged again every pass, by the ten thousand, and shown pending).
            if truncated:
                logger.info("delivery log past scan_limit: lost settles not looked for")
                return len(doomed)
            lost, self._reconciled_to = await lost_settles(
                js,
                names,
                events,
                now=self._clock(),
                after=self._reconciled_to,
                settle_s=self._publish_timeout_s,
            )
            for subject, record in lost:
                await self._append(subject, record)
        return len(doomed)
