"""Who could bid with a group for a funding notice: a pure ranking over plain data.

Interviewees said groups compete for funding and win bigger bids together; one
project worked by matching groups for joint bids. A good partner here is:

- eligible for the notice itself (the funding targeting rule, ``group_fits``:
  contactable, inside the notice's areas, a theme, type and size it allows),
  verified, and listed in the directory (an unlisted group is never revealed);
- complementary: it brings a theme or a capital (social, health...) within the
  notice's themes that the asking group lacks, or does the same theme in a
  neighbouring locality (the same theme in the same place is a rival, not a partner);
- not already a partner (a collaboration record between the two), unless asked.

Ranked by what it brings (a new capital 3, a new theme 2, the same theme next door
2) plus its track record (each past collaboration 1 and each accepted introduction
1, up to 5 each) and, when partners are included, 2 for each record between the
two. Ties go to the lower group id, so the list is stable and ``introduce=<n>``
names the same group the list showed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from bot.features.funding_targeting import Contains, GroupFacts, NoticeFacts, group_fits

LIMIT = 5
NEIGHBOUR_KM = 10.0
NEW_CAPITAL, NEW_THEME, NEXT_DOOR, TRACK_CAP, PAIR = 3, 2, 2, 5, 2

Near = Callable[[str, str], bool]


@dataclass(frozen=True)
class Candidate:
    """A group as the ranking sees it: its profile and its record of working with others."""

    facts: GroupFacts
    verified: bool = True
    listed: bool = True
    collaborations: int = 0  # current collaboration records it is in
    introductions: int = 0  # introductions it asked or answered that were accepted

    @property
    def id(self) -> int:
        return self.facts.id


@dataclass(frozen=True)
class Suggestion:
    group_id: int
    score: int
    brings: tuple[str, ...]  # themes it adds within the notice's themes
    capitals: tuple[str, ...]  # capitals it adds
    next_door: tuple[str, ...]  # themes shared, done in a neighbouring locality
    partner: bool  # already recorded as collaborating with the asker


def _scope(themes: Iterable[str], notice: NoticeFacts) -> set[str]:
    mine = set(themes)
    return mine & set(notice.themes) if notice.themes else mine


def suggest(asker: GroupFacts, notice: NoticeFacts, candidates: Iterable[Candidate], *,
            contains: Contains, near: Near, capital_of: Mapping[str, str],
            pairs: Mapping[int, int] | None = None, include_partners: bool = False,
            limit: int = LIMIT) -> list[Suggestion]:
    """Up to ``limit`` partners for ``asker`` on ``notice``, best first.

    ``pairs`` counts collaboration records between the asker and each group;
    ``near(a, b)`` says two areas are neighbouring localities. Cost: O(C x T) for
    C candidates and T themes (set operations per candidate) plus O(C log C) to sort;
    ``near`` is called once per candidate that shares a theme.
    """
    pairs = pairs or {}
    mine = _scope(asker.themes, notice)
    my_capitals = {capital_of[t] for t in mine if t in capital_of}
    found: list[Suggestion] = []
    for c in candidates:
        f = c.facts
        if f.id == asker.id or not (c.verified and c.listed):
            continue
        if not group_fits(notice, f, contains):
            continue
        partner = pairs.get(f.id, 0) > 0
        if partner and not include_partners:
            continue
        theirs = _scope(f.themes, notice)
        brings = theirs - mine
        capitals = {capital_of[t] for t in brings if t in capital_of} - my_capitals
        shared = theirs & mine
        next_door = shared if shared and f.area_code != asker.area_code \
            and near(asker.area_code, f.area_code) else set()
        if not brings and not next_door:
            continue
        score = (NEW_CAPITAL * len(capitals) + NEW_THEME * len(brings)
                 + (NEXT_DOOR if next_door else 0)
                 + min(c.collaborations, TRACK_CAP) + min(c.introductions, TRACK_CAP)
                 + PAIR * pairs.get(f.id, 0))
        found.append(Suggestion(f.id, score, tuple(sorted(brings)), tuple(sorted(capitals)),
                                tuple(sorted(next_door)), partner))
    found.sort(key=lambda s: (-s.score, s.group_id))
    return found[:limit]
