"""Roles granted by command. Config roles are a floor and are never stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import RoleGrant

# Built once: every command reads its sender's grants.
_GRANTS_FOR = select(RoleGrant).where(RoleGrant.user_id == bindparam("user_id"))


async def grants_for(session: AsyncSession, user_id: str) -> list[RoleGrant]:
    return list(await session.scalars(_GRANTS_FOR, {"user_id": user_id}))


async def all_grants(session: AsyncSession) -> list[RoleGrant]:
    return list(await session.scalars(select(RoleGrant).order_by(RoleGrant.role, RoleGrant.id)))


async def grant(
    session: AsyncSession, user_id: str, role: str, area_code: str, by: str, at: datetime
) -> bool:
    """False when the grant already existed (nothing changes)."""
    exists = await session.scalar(
        select(RoleGrant.id).where(
            RoleGrant.user_id == user_id, RoleGrant.role == role, RoleGrant.area_code == area_code
        )
    )
    if exists is not None:
        return False
    session.add(
        RoleGrant(user_id=user_id, role=role, area_code=area_code, granted_by=by, granted_at=at)
    )
    return True


async def revoke(session: AsyncSession, user_id: str, role: str, area_code: str) -> bool:
    result = await session.execute(
        delete(RoleGrant).where(
            RoleGrant.user_id == user_id, RoleGrant.role == role, RoleGrant.area_code == area_code
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
