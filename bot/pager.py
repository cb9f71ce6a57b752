"""Long answers in pages: chat rooms (and bridges) punish walls of text."""

from __future__ import annotations


class Pager:
    """The rest of each person's last long answer, per place, until they ask for ``!more``.

    Memory only: a page left unread when the bot restarts is simply asked for again.
    """

    def __init__(self) -> None:
        self._rest: dict[tuple[str, str], list[str]] = {}

    def first_page(self, where: str, user_id: str, body: str, lines: int, prefix: str) -> str:
        rows = body.splitlines()
        key = (where, user_id)
        if len(rows) <= lines:
            self._rest.pop(key, None)
            return body
        keep = lines - 1
        self._rest[key] = rows[keep:]
        return "\n".join([*rows[:keep], f"... {len(rows) - keep} more lines: {prefix}more"])

    def more(self, where: str, user_id: str, lines: int, prefix: str) -> str | None:
        rest = self._rest.pop((where, user_id), None)
        if not rest:
            return None
        return self.first_page(where, user_id, "\n".join(rest), lines, prefix)
