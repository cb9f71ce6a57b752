"""command days: which group rooms ran a command on which day

Revision ID: 0013_command_days
Revises: 0012_consult
Create Date: 2026-12-03 16:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0013_command_days'
down_revision: str | None = '0012_consult'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('command_days',
    sa.Column('room_id', sa.String(length=255), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('commands', sa.Integer(), nullable=False),
    sa.Column('last_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('room_id', 'day', name=op.f('pk_command_days'))
    )
    op.create_index(op.f('ix_command_days_last_at'), 'command_days', ['last_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_command_days_last_at'), table_name='command_days')
    op.drop_table('command_days')
