"""message flow: flow records, receipt counts, opt-outs

Revision ID: 0007_flow
Revises: 0006_mediation
Create Date: 2026-11-22 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0007_flow'
down_revision: str | None = '0006_mediation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('flow_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('room_id', sa.String(length=255), nullable=False),
    sa.Column('sender_key', sa.String(length=64), nullable=False),
    sa.Column('at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('target_event', sa.String(length=255), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_events')),
    sa.UniqueConstraint('event_id', name=op.f('uq_flow_events_event_id'))
    )
    op.create_index(op.f('ix_flow_events_at'), 'flow_events', ['at'], unique=False)
    op.create_index(op.f('ix_flow_events_notice_id'), 'flow_events', ['notice_id'], unique=False)
    op.create_index(op.f('ix_flow_events_room_id'), 'flow_events', ['room_id'], unique=False)
    op.create_index(op.f('ix_flow_events_sender_key'), 'flow_events', ['sender_key'], unique=False)
    op.create_table('flow_optouts',
    sa.Column('sender_key', sa.String(length=64), nullable=False),
    sa.Column('at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sender_key', name=op.f('pk_flow_optouts'))
    )
    op.create_table('flow_receipts',
    sa.Column('room_id', sa.String(length=255), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('room_id', 'notice_id', name=op.f('pk_flow_receipts'))
    )
    op.create_index(op.f('ix_flow_receipts_last_at'), 'flow_receipts', ['last_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_flow_receipts_last_at'), table_name='flow_receipts')
    op.drop_table('flow_receipts')
    op.drop_table('flow_optouts')
    op.drop_index(op.f('ix_flow_events_sender_key'), table_name='flow_events')
    op.drop_index(op.f('ix_flow_events_room_id'), table_name='flow_events')
    op.drop_index(op.f('ix_flow_events_notice_id'), table_name='flow_events')
    op.drop_index(op.f('ix_flow_events_at'), table_name='flow_events')
    op.drop_table('flow_events')
