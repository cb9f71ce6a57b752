"""Reply latency in an encrypted DM against the same bot in an unencrypted DM, in one run.

One Synapse, one Grapevine (encryption on, cross-signed), one person with an
encrypting matrix-nio client and two DMs with the bot: one end-to-end encrypted
(as Element makes them), one not. Rounds alternate between the two rooms, so
load on the machine falls on both alike; the figure is the encrypted/plain ratio.

    .venv/bin/python -m bench e2e_latency [--rounds 60] [--warmup 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from bench.harness import percentile, stage, start
from bot.people import Person


async def joined(person: Person, room: str, bot: str) -> None:
    for _ in range(400):
        member = await person.state(room, "m.room.member", bot)
        if member and member.get("membership") == "join":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the bot did not join the DM")


async def ask(person: Person, room: str, bot: str) -> float:
    """Seconds from sending ``!about`` to seeing (and decrypting) the bot's reply."""
    started = time.perf_counter()
    sent = await person.send(room, "!about")
    await person.wait_for_message(room, sender=bot, contains="Opt out with", after=sent)
    return time.perf_counter() - started


async def main(rounds: int, warmup: int) -> None:
    async with stage("person") as on:
        synapse, bot_user, person_user, root = on.synapse, on.bot, on.people["person"], on.root
        service = await start(on.settings(encryption=True))
        person = await Person.connect(person_user, synapse.base_url,
                                      store_dir=root / "person")
        bot = bot_user.user_id
        plain = await person.create_dm(bot, encrypted=False)
        await joined(person, plain, bot)
        secret = await person.create_dm(bot, encrypted=True)
        await joined(person, secret, bot)
        for _ in range(warmup):  # sessions and device lists settle before timing
            await ask(person, secret, bot)
            await ask(person, plain, bot)
        times: dict[str, list[float]] = {"plain": [], "encrypted": []}
        for _ in range(rounds):
            times["plain"].append(await ask(person, plain, bot))
            times["encrypted"].append(await ask(person, secret, bot))
        await person.close()
        await service.stop()
    print(f"Reply latency to !about, {rounds} interleaved rounds "
          f"(load average {os.getloadavg()[0]:.2f} at the end):")
    for name, values in times.items():
        print(f"  {name + ' DM':14} p50 {1000 * statistics.median(values):6.1f} ms"
              f"   p95 {1000 * percentile(values, 0.95):6.1f} ms")
    enc, pla = times["encrypted"], times["plain"]
    print(f"  ratio encrypted/plain p50 {statistics.median(enc) / statistics.median(pla):.2f}"
          f"   p95 {percentile(enc, 0.95) / percentile(pla, 0.95):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.warmup))
