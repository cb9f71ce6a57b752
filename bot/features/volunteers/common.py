"""What the pool's commands and sweeps share: limits, value types, dates in words,
and the DM the bot sends on its own (held overnight).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot import voice
from bot.commands.context import Context
from bot.commands.registry import CommandError
from bot.commands.values import Choice, ListOf, Text
from bot.commands.when import describe_date, describe_window
from bot.features.matching import DBS_LEVELS, Need, skill_bits, skill_label
from bot.host import Host
from storage import outbox
from storage import volunteers as store
from storage.groups import Group
from storage.outbox import Attachment
from storage.volunteers import Volunteer, VolunteerRequest

DEFAULT_RADIUS_KM = 10.0
OFFER_TTL = timedelta(hours=24)
# No official DBS expiry exists; re-checking every 3 years is common policy (notes/domain.md).
RECHECK_YEARS = 3
RECHECK_REMINDER_DAYS = (7, 30, 60)
NUDGE_AFTER = timedelta(days=90)


SKILLS = ListOf(Text(max_length=40))
AVAILABILITY = Text(max_length=200)
DBS = Choice(DBS_LEVELS)
WORKFORCE = Choice(("child", "adult", "both"))


def quiet_until(now: datetime, tz: ZoneInfo) -> datetime:
    """When a DM queued now may go out: at once, or when the night ends (the bot's one
    rule for quiet hours, :func:`bot.voice.allowed_from`).

    A held time is given in local time, as this pool has always had it, so the 24
    hours of an offer made in the night count on the wall clock from 08:00.
    """
    allowed = voice.allowed_from(now, tz)
    return now if allowed == now else allowed.astimezone(tz)


def add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def need_of(req: VolunteerRequest, group: Group) -> Need:
    return Need(group_id=req.group_id, group_verified=group.verified, starts_at=req.starts_at,
                slots=req.slots, lat=req.lat, lon=req.lon, dbs_level=req.dbs_level,
                skill_mask=skill_bits(req.skills or ()))


def when_of(app: Host, req: VolunteerRequest) -> str:
    tz = app.settings.bot.tz
    return describe_window(req.starts_at.astimezone(tz), req.ends_at.astimezone(tz))


def at_text(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{describe_date(local.date())} {local:%H:%M}"


def skills_text(keys: list[str]) -> str:
    return ", ".join(skill_label(k) for k in keys) or "none given"


async def queue_dm(app: Host, session: AsyncSession, now: datetime, user_id: str,
                   body: str, *, dedupe_key: str | None = None,
                   attachment: Attachment | None = None) -> bool:
    """A DM the bot sends on its own: held until 08:00 when it is night where people live."""
    if user_id == store.FORGOTTEN:
        return False
    row = await outbox.enqueue(
        session, now=now, to_user=user_id, body=body, kind="volunteer",
        dedupe_key=dedupe_key, attachment=attachment,
        not_before=quiet_until(now, app.settings.bot.tz),
    )
    app.queued()
    return row is not None


async def profile_or_refuse(ctx: Context) -> Volunteer:
    v = await store.profile(ctx.session, ctx.sender.user_id)
    if v is None:
        raise CommandError(
            f"You aren't in the volunteer pool yet. Join with {ctx.prefix}volunteer register "
            "skills=... area=... availability=... (here in our DM)."
        )
    return v
