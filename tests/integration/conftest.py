"""Generic fixtures for tests against a real Synapse: the homeserver and people on it.

One Synapse serves the whole session (it starts in about 1.5 s); every test
gets fresh users with unique names, so tests do not see each other's rooms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from botfixture import bot, bot_databases, bot_factory  # noqa: F401 (fixtures for every test)
from ircnet import IrcNetwork, IrcRegistration, prepare_registration, start_network
from people import FakeBridge, Person, new_person
from twoservers import (  # noqa: F401 (two federating servers, for test_federation)
    federated_bot_factory,
    federation,
    people_on,
)

from bot.homeserver import AppService, EmbeddedSynapse, RegisteredUser

PersonFactory = Callable[..., Awaitable[Person]]


@pytest.fixture(scope="session")
def heisenbridge_registration(tmp_path_factory: pytest.TempPathFactory) -> IrcRegistration:
    """heisenbridge's own ``--generate`` output; a failure is kept for the IRC tests to report."""
    return prepare_registration(tmp_path_factory.mktemp("heisenbridge"))


@pytest.fixture(scope="session")
async def synapse(
    tmp_path_factory: pytest.TempPathFactory, heisenbridge_registration: IrcRegistration
) -> AsyncIterator[EmbeddedSynapse]:
    homeserver = EmbeddedSynapse(tmp_path_factory.mktemp("synapse"),
                                 appservice_files=heisenbridge_registration.files)
    _whatsapp_appservice(homeserver)  # registrations are read at start-up
    await homeserver.start()
    yield homeserver
    await homeserver.stop()


@pytest.fixture(scope="session")
async def synapse_admin(synapse: EmbeddedSynapse) -> RegisteredUser:
    """A server admin, for admin-API calls such as lifting a bot's rate limits."""
    return await synapse.register("admin", admin=True)


@pytest.fixture
async def person_factory(
    synapse: EmbeddedSynapse, tmp_path: Path
) -> AsyncIterator[PersonFactory]:
    """`await person_factory("Alice")`: a new user with an encrypting client, closed afterwards."""
    made: list[Person] = []

    async def make(name: str = "Person", *, admin: bool = False, e2e: bool = True) -> Person:
        store_root = tmp_path / "nio-stores" if e2e else None
        person = await new_person(synapse, name, store_root=store_root, admin=admin)
        made.append(person)
        return person

    yield make
    for person in made:
        await person.close()


@pytest.fixture
async def alice(person_factory: PersonFactory) -> Person:
    return await person_factory("Alice")


@pytest.fixture
async def bob(person_factory: PersonFactory) -> Person:
    return await person_factory("Bob")


@pytest.fixture(scope="session")
def whatsapp_bridge(synapse: EmbeddedSynapse) -> FakeBridge:
    """A stand-in for mautrix-whatsapp: bot @whatsappbot, ghosts @whatsapp_<number>."""
    return FakeBridge(
        synapse,
        _whatsapp_appservice(synapse),
        protocol="whatsapp",
        displayname="WhatsApp",
        ghost_prefix="whatsapp_",
    )


def _whatsapp_appservice(homeserver: EmbeddedSynapse) -> AppService:
    return homeserver.add_appservice(
        "whatsapp", sender_localpart="whatsappbot", user_prefix="whatsapp_"
    )


@pytest.fixture(scope="session")
async def irc_network(
    synapse: EmbeddedSynapse, heisenbridge_registration: IrcRegistration,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[IrcNetwork]:
    """A real IRC server (ngircd) and the real heisenbridge, owned by an operator, once a
    session; each test plumbs its own room to its own channel. Fails when they cannot run."""
    operator = await new_person(synapse, "Operator")
    network = await start_network(synapse, heisenbridge_registration,
                                  tmp_path_factory.mktemp("irc"), operator)
    yield network
    network.stop()
    await operator.close()
