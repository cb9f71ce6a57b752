"""The harness itself against a real Synapse: people meet, talk, survive restarts."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
import yaml
from people import FakeBridge, MatrixRequestFailed, Person, new_person
from twoservers import Federation, PeopleOn

from bot.homeserver import EmbeddedSynapse, HomeserverError, RegisteredUser, SynapseStartError


async def test_two_people_meet_in_a_room_and_talk(alice: Person, bob: Person) -> None:
    room = await alice.create_room(name="Allotment society", invite=[bob.user_id])
    assert await bob.wait_for_invite() == room
    await bob.join(room)

    await alice.send(room, "Seed swap on Saturday?")
    heard = await bob.wait_for_message(room, sender=alice.user_id)
    assert heard["content"]["body"] == "Seed swap on Saturday?"

    await bob.send(room, "Count me in", reply_to=heard["event_id"])
    answer = await alice.wait_for_message(room, sender=bob.user_id)
    assert answer["content"]["body"] == "Count me in"
    assert answer["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == heard["event_id"]


async def test_an_encrypted_direct_message_is_read_in_clear(alice: Person, bob: Person) -> None:
    dm = await alice.create_dm(bob.user_id)
    await bob.wait_for_invite(room_id=dm, joined=True)

    await alice.send(dm, "Can you drive on Tuesday?")
    heard = await bob.wait_for_message(dm, contains="drive")
    assert heard["content"]["body"] == "Can you drive on Tuesday?"
    raw = [e for e in await bob.messages(dm) if e.get("event_id") == heard["event_id"]]
    assert raw and raw[0]["type"] == "m.room.message"  # decrypted from history as well
    assert await alice.state(dm, "m.room.encryption") is not None


async def test_a_wait_that_times_out_says_what_it_saw(alice: Person, bob: Person) -> None:
    room = await alice.create_room(invite=[bob.user_id])
    await bob.join(room)
    await alice.send(room, "Only this")
    with pytest.raises(AssertionError, match="Only this") as failure:
        await bob.wait_for_message(room, contains="never sent", timeout=1)
    assert "never sent" in str(failure.value)


async def test_a_reply_that_came_before_the_wait_is_not_missed(alice: Person, bob: Person) -> None:
    room = await alice.create_room(invite=[bob.user_id])
    await bob.join(room)
    asked = await bob.send(room, "Anyone?")
    await alice.send(room, "Yes, me")
    await bob.mark()  # the answer has already been synced before the wait begins
    answer = await bob.wait_for_message(room, sender=alice.user_id, timeout=5)
    assert answer["content"]["body"] == "Yes, me"
    assert (await bob.wait_for_message(room, after=asked))["event_id"] == answer["event_id"]


async def test_reactions_receipts_redactions_and_kicks_reach_the_room(
    alice: Person, bob: Person
) -> None:
    room = await alice.create_room(invite=[bob.user_id])
    await bob.join(room)
    notice = await alice.send(room, "Funding notice F1")
    await bob.wait_for_message(room, contains="F1")

    await bob.react(room, notice, "👍")
    await bob.read_receipt(room, notice)
    reaction = await alice.wait_for_message(room, event_type="m.reaction", after=notice)
    await alice.wait_for_receipt(room, notice, bob.user_id)
    assert reaction["content"]["m.relates_to"] == {
        "rel_type": "m.annotation", "event_id": notice, "key": "👍"
    }

    redaction = await alice.redact(room, notice, reason="posted twice")
    seen = await bob.wait_for_message(room, event_type="m.room.redaction", sender=alice.user_id)
    assert seen["event_id"] == redaction

    await alice.kick(room, bob.user_id, reason="testing")
    member = await alice.state(room, "m.room.member", bob.user_id)
    assert member is not None and member["membership"] == "leave"
    kicked = await bob.wait_for_message(
        room,
        event_type="m.room.member",
        predicate=lambda e: e["state_key"] == bob.user_id and e["content"]["membership"] == "leave",
    )
    assert kicked["sender"] == alice.user_id and kicked["content"]["reason"] == "testing"

    await alice.invite(room, bob.user_id)
    assert await bob.wait_for_invite(joined=True) == room


async def test_power_levels_are_set_without_listing_the_creator(
    alice: Person, bob: Person
) -> None:
    room = await alice.create_room(invite=[bob.user_id])
    await alice.set_power_level(room, bob.user_id, 50)

    with pytest.raises(MatrixRequestFailed, match="M_FORBIDDEN"):
        await bob.state(room, "m.room.power_levels")  # invited is not joined
    await bob.join(room)
    assert await bob.state(room, "m.room.topic") is None
    levels = await bob.state(room, "m.room.power_levels")
    assert levels is not None
    assert levels["users"] == {bob.user_id: 50}
    assert await alice.creators(room) == {alice.user_id}
    with pytest.raises(ValueError, match="created"):
        await alice.set_power_level(room, alice.user_id, 100)


async def test_many_rooms_can_be_made_without_hitting_a_rate_limit(
    synapse: EmbeddedSynapse, alice: Person
) -> None:
    # Synapse's default allows a burst of 10; a raw request raises on 429 instead of waiting.
    rooms = [
        await synapse.request(
            "POST", "/_matrix/client/v3/createRoom", token=alice.user.access_token, body={}
        )
        for _ in range(15)
    ]
    assert len({r["room_id"] for r in rooms}) == 15


async def test_only_a_server_admin_can_lift_rate_limits(
    synapse: EmbeddedSynapse, synapse_admin: RegisteredUser, alice: Person
) -> None:
    with pytest.raises(HomeserverError) as refused:
        await synapse.override_ratelimit(alice.user_id, alice.user.access_token)
    assert refused.value.errcode == "M_FORBIDDEN"

    await synapse.override_ratelimit(alice.user_id, synapse_admin.access_token)
    path = f"/_synapse/admin/v1/users/{alice.user_id}/override_ratelimit"
    limits = await synapse.request("GET", path, token=synapse_admin.access_token)
    assert limits == {"messages_per_second": 0, "burst_count": 0}


async def test_registering_an_existing_user_logs_in(synapse: EmbeddedSynapse) -> None:
    first = await synapse.register("gardener.reregister", "s3cret", displayname="Gardener")
    again = await synapse.register("gardener.reregister", "s3cret")
    assert again.user_id == first.user_id == synapse.user_id("gardener.reregister")
    assert again.device_id != first.device_id
    whoami = await synapse.request(
        "GET", "/_matrix/client/v3/account/whoami", token=again.access_token
    )
    assert whoami["user_id"] == first.user_id


async def test_restart_keeps_users_rooms_and_history(tmp_path: Path) -> None:
    homeserver = EmbeddedSynapse(tmp_path / "hs")
    await homeserver.start()
    try:
        alice = await new_person(homeserver, "Alice")
        room = await alice.create_room(name="Food bank rota")
        await alice.send(room, "Before the restart")
        port = homeserver.port

        await homeserver.restart()
        assert homeserver.port == port and homeserver.is_running

        await alice.send(room, "After the restart")  # the old token and connection still work
        relogged = await homeserver.login(alice.user_id, alice.user.password)
        again = await Person.connect(relogged, homeserver.base_url)
        bodies = [e["content"].get("body") for e in await again.messages(room)]
        assert bodies[-2:] == ["Before the restart", "After the restart"]
        await again.close()
        await alice.close()
    finally:
        await homeserver.stop()
    assert not homeserver.is_running


async def test_a_data_directory_is_reused_by_a_new_homeserver_object(tmp_path: Path) -> None:
    first = EmbeddedSynapse(tmp_path / "demo")
    async with first:
        user = await first.register("coordinator", admin=True)
        with pytest.raises(SynapseStartError, match="already running"):
            await EmbeddedSynapse(tmp_path / "demo").start()
    assert not first.is_running

    second = EmbeddedSynapse(tmp_path / "demo")
    assert second.shared_secret == first.shared_secret
    async with second:
        back = await second.register("coordinator")  # exists: logs in with the same password
        assert back.user_id == user.user_id
        me = await second.request(
            "GET", f"/_synapse/admin/v2/users/{user.user_id}", token=back.access_token
        )
        assert me["admin"] is True


def test_a_data_directory_belongs_to_one_server_name(tmp_path: Path) -> None:
    EmbeddedSynapse(tmp_path / "hs", server_name="localhost")
    with pytest.raises(ValueError, match="localhost"):
        EmbeddedSynapse(tmp_path / "hs", server_name="example.org")


async def test_a_bad_config_fails_start_with_synapse_s_own_words(tmp_path: Path) -> None:
    broken = EmbeddedSynapse(tmp_path / "hs", extra_config={"default_room_version": "999"})
    with pytest.raises(SynapseStartError, match="999"):
        await broken.start(timeout=30)
    assert not broken.is_running


async def test_two_federated_homeservers_share_a_room(
    federation: Federation, people_on: PeopleOn
) -> None:
    council, village = federation.home, federation.away
    assert council.server_name == f"localhost:{council.federation_port}"
    config = yaml.safe_load(council.config_path.read_text())
    # Certificates are verified, against the throwaway CA both servers trust.
    assert "federation_verify_certificates" not in config
    assert config["federation_custom_ca_list"] == [str(council.ca.cert_path)]
    assert council.ca.cert_path == village.ca.cert_path
    clerk = await people_on(council, "Clerk")
    neighbour = await people_on(village, "Neighbour")
    alias = f"parish-hub-{secrets.token_hex(4)}"  # the servers outlive this test
    hub = await clerk.create_room(name="Parish hub", alias=alias, public=True)
    other = await clerk.create_room(name="Parish notices", public=True)

    assert await neighbour.join(f"#{alias}:{council.server_name}") == hub
    assert await neighbour.join(other, via=[council.server_name]) == other
    await clerk.send(hub, "Welcome, village!")
    heard = await neighbour.wait_for_message(hub, sender=clerk.user_id)
    assert heard["content"]["body"] == "Welcome, village!"
    await neighbour.send(hub, "Thanks!")
    assert (await clerk.wait_for_message(hub))["sender"] == neighbour.user_id


async def test_a_fake_bridge_brings_a_whatsapp_group_with_its_people(
    whatsapp_bridge: FakeBridge, alice: Person
) -> None:
    portal = await whatsapp_bridge.create_portal(
        "Mill Road Mutual Aid", channel_id="120363025@g.us", invite=[alice.user_id]
    )
    await alice.join(portal)
    priya = await whatsapp_bridge.ghost("447700900123", displayname="Priya (WA)")
    await whatsapp_bridge.add_ghost(portal, priya)

    await whatsapp_bridge.send_as(priya, portal, "Anyone free to collect bread at 5?")
    heard = await alice.wait_for_message(portal, sender=priya)
    assert heard["content"]["body"] == "Anyone free to collect bread at 5?"
    await whatsapp_bridge.relay(portal, "Tom", "I can")
    relayed = await alice.wait_for_message(portal, sender=whatsapp_bridge.bot_user_id)
    assert relayed["content"]["body"] == "Tom: I can"

    bridge_info = [
        e for e in await alice.messages(portal) if e["type"] in ("m.bridge", "uk.half-shot.bridge")
    ]
    assert {e["content"]["protocol"]["id"] for e in bridge_info} == {"whatsapp"}
    ghosts = re.compile(whatsapp_bridge.appservice.user_regex)
    assert ghosts.fullmatch(priya) and not ghosts.fullmatch(alice.user_id)
