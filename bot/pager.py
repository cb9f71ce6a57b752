"""Long answers in pages: chat rooms (and bridges) punish walls of text.

A page fits the room's network in lines and in length (``bridges.render.paginate``);
the rest waits for ``!more``. Each person's rest is kept until they ask for it or
ten minutes pass, whatever else they ask in between; a new long answer replaces it.
Posts the bot makes on its own keep their rest for the whole room (``EVERYONE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bridges.capabilities import Limits
from bridges.render import more_pointer, paginate

KEEP = timedelta(minutes=10)
# The "person" whose rest anyone in the room may ask for: the bot's own posts.
EVERYONE = "*"


@dataclass
class _Rest:
    lines: list[str]
    until: datetime


class Pager:
    """The rest of each person's last long answer, per place, until ``!more`` or ``KEEP``.

    Memory only: a page left unread when the bot restarts is simply asked for again.
    """

    def __init__(self, clock: Clock, keep: timedelta = KEEP) -> None:
        self._clock = clock
        self._keep = keep
        self._rest: dict[tuple[str, str], _Rest] = {}

    def first_page(self, where: str, user_id: str, body: str, limits: Limits, prefix: str) -> str:
        """What to send now; any rest is kept. A short answer leaves an earlier rest alone."""
        page, rest = paginate(body, limits, more_pointer(prefix))
        if rest:
            self.keep(where, user_id, rest)
        return page

    def keep(self, where: str, user_id: str, lines: list[str]) -> None:
        self._rest[(where, user_id)] = _Rest(list(lines), self._clock.now() + self._keep)

    def keep_for_room(self, room_id: str, lines: list[str]) -> None:
        """The rest of a post the bot made on its own: anyone in the room may ask for it."""
        self.keep(room_id, EVERYONE, lines)

    def more(self, where: str, user_id: str, limits: Limits, prefix: str) -> str | None:
        """The next page of the sender's rest here, else of the bot's own last post here."""
        now = self._clock.now()
        self._rest = {key: rest for key, rest in self._rest.items() if rest.until > now}
        for key in ((where, user_id), (where, EVERYONE)):
            rest = self._rest.pop(key, None)
            if rest is not None:
                return self.first_page(where, key[1], "\n".join(rest.lines), limits, prefix)
        return None
