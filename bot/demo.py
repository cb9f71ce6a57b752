"""``grapevine demo``: the whole thing on one machine, with nothing installed but the project.

An embedded Synapse on loopback (SQLite, in the data directory), the bot, and
demo people who act out a scenario, each step printed as it happens. Then the
homeserver stays up and you can log in with any Matrix client, or with
``--once`` everything stops. Re-running reuses the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import secrets
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.app import Grapevine
from bot.homeserver import EmbeddedSynapse
from bot.people import Person
from bot.service import Service
from config.settings import load_settings


def demo_zone(now: datetime | None = None) -> str:
    """Europe/London, unless it is London's quiet hours (21:00-08:00), when the bot would
    rightly hold its posts until morning: then a zone where it is daytime, said aloud."""
    now = now or datetime.now(UTC)
    if 8 <= now.astimezone(ZoneInfo("Europe/London")).hour < 20:
        return "Europe/London"
    offset = 12 - now.hour  # local = UTC + offset; Etc/GMT signs are reversed
    offset = max(-12, min(12, offset if offset <= 12 else offset - 24))
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel>
<title>Fens Community Foundation: open grants</title>
<link>https://fens-foundation.example.org/grants</link>
<description>Grants open to community groups in the Fens</description>
<item>
  <title>Warm Spaces and Food Fund 2026/27</title>
  <link>https://fens-foundation.example.org/grants/warm-spaces</link>
  <guid>fcf-warm-spaces-2026</guid>
  <description>Grants of 500 to 5,000 pounds for food banks, community fridges and warm
  spaces in Fenland. Constituted groups and charities may apply.</description>
  <pubDate>{published}</pubDate>
</item>
</channel></rss>
"""


@dataclass
class Scenario:
    synapse: EmbeddedSynapse
    service: Service
    bot_id: str
    people: dict[str, Person]
    feed_url: str = ""
    rooms: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def app(self) -> Grapevine:
        assert self.service.app is not None
        return self.service.app

    def show(self, who: str, text: str) -> None:
        lines = text.splitlines() or [""]
        print(f"  {who:>9} | {lines[0]}")
        for line in lines[1:]:
            print(f"  {'':>9} | {line}")

    async def ask(self, person: str, room: str, text: str, contains: str = "",
                  timeout: float = 60.0) -> str:
        """``person`` says ``text`` in ``room``; prints it and the bot's answer."""
        someone = self.people[person]
        self.show(person.capitalize(), text)
        await someone.send(self.rooms[room], text)
        event = await someone.wait_for_message(self.rooms[room], sender=self.bot_id,
                                               contains=contains or None, timeout=timeout)
        answer = str(event["content"].get("body", ""))
        self.show("Grapevine", answer)
        return answer

    async def dm(self, person: str) -> str:
        """``person``'s direct-message room with the bot (made, like Element would, if need be)."""
        key = f"dm:{person}"
        if key not in self.rooms:
            someone = self.people[person]
            room = await someone.create_dm(self.bot_id)
            await someone.wait_for_message(
                room, sender=self.bot_id, event_type="m.room.member",
                predicate=lambda e: e.get("state_key") == self.bot_id, timeout=30)
            self.rooms[key] = room
        return key


Step = Callable[[Scenario], Awaitable[None]]


def _id(letter: str, text: str) -> str:
    match = re.search(rf"\b{letter}(\d+)\b", text)
    if match is None:
        raise RuntimeError(f"expected an id {letter}<n> in: {text}")
    return f"{letter}{match.group(1)}"


async def step_group_rooms(s: Scenario) -> None:
    print("\n1. Two groups bring the bot into their own chats:")
    alice, dan = s.people["alice"], s.people["dan"]
    s.rooms["foodbank"] = await alice.create_room(name="Wisbech Food Bank", invite=[s.bot_id])
    s.rooms["youth"] = await dan.create_room(name="Wisbech Youth Club", invite=[s.bot_id])
    for person, room in ((alice, "foodbank"), (dan, "youth")):
        greeting = await person.wait_for_message(s.rooms[room], sender=s.bot_id,
                                                 contains="never what anyone writes", timeout=60)
    s.show("Grapevine", str(greeting["content"]["body"]))
    await s.ask("alice", "foodbank", "!help")


async def step_room_tree(s: Scenario) -> None:
    print("\n2. The admin rolls out locality and theme rooms for a pilot district:")
    room = await s.dm("ada")
    someone = s.people["ada"]
    s.show("Ada", "!rooms setup area=fenland")
    await someone.send(s.rooms[room], "!rooms setup area=fenland")
    done = await someone.wait_for_message(
        s.rooms[room], sender=s.bot_id, timeout=300,
        predicate=lambda e: "Rooms for Fenland:" in str(e["content"].get("body", ""))
        and "The server" not in str(e["content"].get("body", "")))
    s.show("Grapevine", str(done["content"]["body"]))
    await s.ask("alice", "foodbank", "!rooms area=wisbech")


async def step_groups(s: Scenario) -> None:
    print("\n3. The groups register their profiles; the county coordinator verifies them:")
    food = await s.ask("alice", "foodbank", '!group register name="Wisbech Food Bank" '
                       "type=charity area=Wisbech themes=food size=small", "G")
    youth = await s.ask("dan", "youth", '!group register name="Wisbech Youth Club" '
                        "type=unregistered-group area=Wisbech themes=youth,sport size=micro",
                        "G")
    s.ids["food"], s.ids["youth"] = _id("G", food), _id("G", youth)
    room = await s.dm("cora")
    for group in (s.ids["food"], s.ids["youth"]):
        await s.ask("cora", room, f"!group verify {group}", group)
    await s.ask("alice", "foodbank", "!directory area=fenland")


# Ten more Fenland groups, whose people engage with a notice by a known process: in each room
# that gets it, someone leaves a trace (a reaction) with probability TRACE_CHANCE, drawn from
# a seeded generator, so the model's interval and what happened can be compared honestly.
NEIGHBOURS = ("March", "Chatteris", "Whittlesey", "Doddington", "Elm", "Leverington",
              "Parson Drove", "Manea", "Benwick", "Wimblington")
TRACE_CHANCE = 0.5
TRACE_SEED = 17


async def step_neighbours(s: Scenario) -> None:
    print(f"\n3b. {len(NEIGHBOURS)} more Fenland food groups bring the bot in and register:")
    nell = s.people["nell"]

    async def one(place: str) -> tuple[str, str]:
        room = await nell.create_room(name=f"{place} Community Larder", invite=[s.bot_id])
        await nell.wait_for_message(room, sender=s.bot_id, contains="never what anyone writes",
                                    timeout=60)
        return place, room

    for place, room in await asyncio.gather(*(one(p) for p in NEIGHBOURS)):
        s.rooms[f"larder:{place}"] = room
    refs = []
    for place in NEIGHBOURS:
        await nell.send(s.rooms[f"larder:{place}"], f'!group register name="{place} Community '
                        f'Larder" type=unregistered-group area="{place}" themes=food size=micro')
        answer = await nell.wait_for_message(s.rooms[f"larder:{place}"], sender=s.bot_id,
                                             contains="G", timeout=60)
        refs.append(_id("G", str(answer["content"]["body"])))
    s.show("Grapevine", f"Registered {', '.join(refs)} (one per room).")


async def step_funding(s: Scenario) -> None:
    print("\n4. A funder's feed is collected, held, approved and delivered to who can use it:")
    from bot.features.funding import poll_feeds

    room = await s.dm("cora")
    await s.ask("cora", room, f"!funding source add {s.feed_url} areas=fenland themes=food",
                "S")
    await s.ask("alice", "foodbank", "!funding subscribe areas=wisbech themes=food")
    print("            (the feed poller runs on a schedule; the demo asks it now)")
    await poll_feeds(s.app, s.app.clock.now())
    waiting = await s.ask("cora", room, "!funding list", "Waiting for your approval")
    s.ids["notice"] = notice = _id("F", waiting.split("Waiting for your approval")[-1])
    alice = s.people["alice"]
    await s.ask("cora", room, f"!funding approve {notice}", notice)
    delivered = await alice.wait_for_message(s.rooms["foodbank"], sender=s.bot_id,
                                             contains=f"Funding {notice}", timeout=60)
    s.show("Grapevine", str(delivered["content"]["body"]))
    s.ids["notice_event"] = str(delivered["event_id"])


async def step_volunteers(s: Scenario) -> None:
    print("\n5. A volunteer joins the shared pool by DM; a group's request finds them:")
    room = await s.dm("bob")
    await s.ask("bob", room, "!volunteer register skills=driving,communication area=Wisbech "
                "availability=weekends over18=yes", "pool")  # "already in the pool" on a re-run
    request = await s.ask("alice", "foodbank", '!volunteer need 1 role="Saturday food sort" '
                          'when="sat 10am-1pm" area=Wisbech', "V")
    bob = s.people["bob"]
    offer = await bob.wait_for_message(s.rooms[room], sender=s.bot_id, contains="O",
                                       predicate=lambda e: "Saturday food sort"
                                       in str(e["content"].get("body", "")), timeout=60)
    s.show("Grapevine", str(offer["content"]["body"]))
    await s.ask("bob", room, f"!volunteer accept {_id('O', str(offer['content']['body']))}",
                _id("V", request))


async def step_mediation(s: Scenario) -> None:
    print("\n6. Two groups with a history agree shared norms with a mediator:")
    room = await s.dm("cora")
    mia = s.people["mia"]
    opened = await s.ask("cora", room, '!mediation open title="Shared kitchen rota" '
                         f'groups={s.ids["food"]},{s.ids["youth"]} mediator={mia.user_id}',
                         "opened")
    case = _id("M", opened)
    case_room = await mia.wait_for_invite(timeout=60, joined=True)
    s.rooms["case"] = case_room
    for name in ("alice", "dan"):
        await s.people[name].wait_for_invite(timeout=60, room_id=case_room, joined=True)
    for name in ("mia", "alice", "dan"):  # so the bot has everyone's encryption keys
        await s.people[name].send(case_room, "Hello")
    await asyncio.sleep(2)
    agreed = await s.ask("mia", "case", '!mediation agree "Whoever cooks last cleans the '
                         'kitchen the same day"', "N")
    norm = _id("N", agreed)
    await s.ask("alice", "case", f"!mediation confirm {norm}", f"{norm} confirmed")
    await s.ask("dan", "case", f"!mediation confirm {norm}", f"{norm} confirmed")
    await s.ask("mia", "case", "!mediation close outcome=agreement", case)
    await s.ask("alice", "foodbank", f'!collab record type=shared-event groups={s.ids["food"]},'
                f'{s.ids["youth"]} note="Joint Christmas lunch"', "C")


async def step_reach(s: Scenario) -> None:
    print("\n7. People pass the notice on; the coordinator checks reach against the model:")
    alice = s.people["alice"]
    await alice.react(s.rooms["foodbank"], s.ids["notice_event"], "\N{THUMBS UP SIGN}")
    await alice.send(s.rooms["foodbank"], f"We should apply for {s.ids['notice']}!",
                     reply_to=s.ids["notice_event"])
    await s.people["dan"].send(s.rooms["youth"], f"Food bank folk: see {s.ids['notice']}")
    nell, draw = s.people["nell"], random.Random(TRACE_SEED)
    traced = 0
    for place in NEIGHBOURS:
        room = s.rooms[f"larder:{place}"]
        post = await nell.wait_for_message(room, sender=s.bot_id,
                                           contains=f"Funding {s.ids['notice']}", timeout=60)
        if draw.random() < TRACE_CHANCE:
            await nell.react(room, str(post["event_id"]), "\N{EYES}")
            traced += 1
    print(f"            (in each larder someone reacts with chance {TRACE_CHANCE:g}, from a "
          f"seeded draw: {traced} of {len(NEIGHBOURS)} did)")
    await asyncio.sleep(2)
    room = await s.dm("cora")
    await s.ask("cora", room, f"!reach report {s.ids['notice']}", "")
    chart = await s.people["cora"].wait_for_message(
        s.rooms[room], sender=s.bot_id, timeout=60,
        predicate=lambda e: e["content"].get("msgtype") == "m.image")
    s.show("Grapevine", f"[image: {chart['content'].get('body')}]")


# Each feature's part of the story, in order.
STEPS: list[Step] = [step_group_rooms, step_room_tree, step_groups, step_neighbours, step_funding,
                     step_volunteers, step_mediation, step_reach]

PEOPLE = {
    "ada": ("Ada (admin)", True),
    "alice": ("Alice (Wisbech Food Bank)", False),
    "dan": ("Dan (Wisbech Youth Club)", False),
    "cora": ("Cora (county coordinator)", False),
    "bob": ("Bob (volunteer)", False),
    "mia": ("Mia (mediator)", False),
    "nell": ("Nell (Fenland larders)", False),
}


async def serve_feed() -> tuple[web.AppRunner, str]:
    """A funder's RSS feed, served on loopback like any funder's site would serve it."""
    published = format_datetime(datetime.now(UTC))

    async def feed(request: web.Request) -> web.Response:
        return web.Response(text=FEED.format(published=published),
                            content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/grants.xml", feed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/grants.xml"


def _secret(path: Path) -> str:
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


async def run_demo(data_dir: Path, *, once: bool = False) -> int:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"Starting an embedded Synapse in {data_dir / 'synapse'} ...")
    synapse = EmbeddedSynapse(data_dir / "synapse")
    await synapse.start()
    people: dict[str, Person] = {}
    service: Service | None = None
    feed_runner, feed_url = await serve_feed()
    try:
        bot_password = _secret(data_dir / "bot-password")
        bot_user = await synapse.register("grapevine", bot_password, admin=True,
                                          displayname="Grapevine")
        users = {}
        for local, (display, admin) in PEOPLE.items():
            users[local] = await synapse.register(local, f"demo-{local}", admin=admin,
                                                  displayname=display)
        await synapse.override_ratelimit(bot_user.user_id, users["ada"].access_token)
        zone = demo_zone()
        if zone != "Europe/London":
            print(f"It is night in London, when the bot holds its posts until 08:00; "
                  f"the demo runs on {zone} time instead.")
        settings = load_settings(
            None,
            bot={"data_dir": str(data_dir / "bot"), "timezone": zone,
                 "commands_per_minute": 60},
            matrix={"homeserver": synapse.base_url, "user_id": bot_user.user_id,
                    "password": bot_password, "encryption": True,
                    "cross_signing_key": _secret(data_dir / "cross-signing-secret")},
            roles={"admins": [users["ada"].user_id],
                   "coordinators": [users["cora"].user_id]},
            privacy={"pseudonym_secret": _secret(data_dir / "pseudonym-secret"),
                     "notes_key": _fernet_key(data_dir / "notes-key")},
            web={"listen": "127.0.0.1:0"},
        )
        service = Service(settings)
        await service.start()
        await service.wait_ready()
        print(f"Grapevine is running as {bot_user.user_id}.")
        for local in PEOPLE:
            people[local] = await Person.connect(users[local], synapse.base_url,
                                                 store_dir=data_dir / "people" / local)
        scenario = Scenario(synapse, service, bot_user.user_id, people, feed_url)
        for step in STEPS:
            await step(scenario)
        print("\nThe demo homeserver is up. Log in with any Matrix client (e.g. Element):")
        print(f"  homeserver: {synapse.base_url}")
        for local, (display, _) in PEOPLE.items():
            print(f"  {display}: user {local}, password demo-{local}")
        if not once:
            print("Press Ctrl-C to stop.")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
        return 0
    finally:
        for person in people.values():
            with contextlib.suppress(Exception):
                await person.close()
        if service is not None:
            await service.stop()
        await feed_runner.cleanup()
        await synapse.stop()


def _fernet_key(path: Path) -> str:
    if not path.exists():
        from cryptography.fernet import Fernet

        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()
