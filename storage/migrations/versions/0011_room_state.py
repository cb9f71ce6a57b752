"""room state kept from sync

Revision ID: 0011_room_state
Revises: 0010_invites_and_joins
Create Date: 2026-12-03 12:36:18.973094
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0011_room_state'
down_revision: str | None = '0010_invites_and_joins'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('room_state',
    sa.Column('room_id', sa.String(length=255), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('room_id', name=op.f('pk_room_state'))
    )


def downgrade() -> None:
    op.drop_table('room_state')
