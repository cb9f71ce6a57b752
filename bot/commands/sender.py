"""Who sent a command, and the roles that lets them use.

Below the command context and the deferred-job types, which both carry a
:class:`Sender`: it needs only the declarations (``bot.commands.registry``), so
the context, the declarations and the deferred jobs form no import circle.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.commands.registry import Command, Role


@dataclass(frozen=True)
class Sender:
    user_id: str
    is_admin: bool = False
    is_coordinator: bool = False
    # Area codes this person moderates (config and grants); each covers everything inside it.
    moderated: frozenset[str] = frozenset()
    is_group_admin: bool = False
    # A message relayed with a "Name: " prefix: whoever sent it, it counts as a member's.
    relayed: bool = False

    @property
    def roles(self) -> frozenset[Role]:
        roles = {Role.MEMBER}
        if self.is_admin:
            roles.add(Role.ADMIN)
        if self.is_coordinator:
            roles.add(Role.COORDINATOR)
        if self.moderated:
            roles.add(Role.MODERATOR)
        if self.is_group_admin:
            roles.add(Role.GROUP_ADMIN)
        return frozenset(roles)

    def may(self, command: Command) -> bool:
        return not command.roles or bool(command.roles & self.roles)
