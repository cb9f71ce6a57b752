"""undecryptable events: messages waiting for their room key, kept across a restart

Revision ID: 0016_undecryptable
Revises: 0015_venues
Create Date: 2026-12-03 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0016_undecryptable'
down_revision: str | None = '0015_venues'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('undecryptable_events',
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('room_id', sa.String(length=255), nullable=False),
    sa.Column('sender', sa.String(length=255), nullable=False),
    sa.Column('since', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('told_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_undecryptable_events'))
    )
    op.create_index(op.f('ix_undecryptable_events_sender'), 'undecryptable_events', ['sender'],
                    unique=False)
    op.create_index(op.f('ix_undecryptable_events_since'), 'undecryptable_events', ['since'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_undecryptable_events_since'), table_name='undecryptable_events')
    op.drop_index(op.f('ix_undecryptable_events_sender'), table_name='undecryptable_events')
    op.drop_table('undecryptable_events')
