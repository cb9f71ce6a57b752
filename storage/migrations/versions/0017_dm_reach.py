"""dm reach: DM invites to bridged people being watched, and who the bot's DMs do not reach

Revision ID: 0017_dm_reach
Revises: 0016_undecryptable
Create Date: 2026-12-03 19:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0017_dm_reach'
down_revision: str | None = '0016_undecryptable'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dm_reach',
    sa.Column('person', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=255), nullable=True),
    sa.Column('room_id', sa.String(length=255), nullable=True),
    sa.Column('watched_since', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('unreachable_until', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('person', name=op.f('pk_dm_reach'))
    )


def downgrade() -> None:
    op.drop_table('dm_reach')
