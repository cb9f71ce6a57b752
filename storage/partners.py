"""Groups' record of working together, for ranking funding partners: counts, no people."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.collab import CollabRecord
from storage.introductions import ACCEPTED, Introduction


@dataclass
class TrackRecord:
    collaborations: Counter[int] = field(default_factory=Counter)  # records a group is in
    introductions: Counter[int] = field(default_factory=Counter)  # accepted, either side
    pairs: Counter[tuple[int, int]] = field(default_factory=Counter)  # records between two

    def between(self, group_id: int) -> dict[int, int]:
        """Collaboration records between ``group_id`` and each other group."""
        out: dict[int, int] = {}
        for (a, b), n in self.pairs.items():
            if group_id in (a, b):
                out[b if a == group_id else a] = n
        return out


async def track_record(session: AsyncSession) -> TrackRecord:
    record = TrackRecord()
    for groups in await session.scalars(
            select(CollabRecord.group_ids).where(CollabRecord.removed_at.is_(None))):
        ids = sorted(set(groups))
        record.collaborations.update(ids)
        record.pairs.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1:])
    rows = await session.execute(
        select(Introduction.from_group_id, Introduction.to_group_id)
        .where(Introduction.status == ACCEPTED))
    for asker, answerer in rows.tuples():
        record.introductions.update(g for g in (asker, answerer) if g is not None)
    return record
