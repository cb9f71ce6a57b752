"""bridged rooms: bridge, remote chat and room features

Revision ID: 0008_bridges
Revises: 0007_flow
Create Date: 2026-11-22 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0008_bridges'
down_revision: str | None = '0007_flow'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('bridged_rooms',
    sa.Column('room_id', sa.String(length=255), nullable=False),
    sa.Column('network', sa.String(length=64), nullable=True),
    sa.Column('bridge_id', sa.String(length=255), nullable=True),
    sa.Column('channel_name', sa.String(length=300), nullable=True),
    sa.Column('features', sa.JSON(), nullable=True),
    sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('room_id', name=op.f('pk_bridged_rooms'))
    )


def downgrade() -> None:
    op.drop_table('bridged_rooms')
