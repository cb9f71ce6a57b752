"""venues and hubs; the council topic the bot set on each locality room

Revision ID: 0015_venues
Revises: 0014_listings
Create Date: 2026-12-03 16:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0015_venues'
down_revision: str | None = '0014_listings'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('venues',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('area_code', sa.String(length=16), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('price', sa.String(length=16), nullable=False),
    sa.Column('accessible', sa.Boolean(), nullable=False),
    sa.Column('contact', sa.String(length=320), nullable=True),
    sa.Column('hub', sa.Boolean(), nullable=False),
    sa.Column('open_slots', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('added_by', sa.String(length=255), nullable=False),
    sa.Column('added_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('removed_by', sa.String(length=255), nullable=True),
    sa.Column('removed_at', storage.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['groups.id'], name=op.f('fk_venues_group_id_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_venues'))
    )
    with op.batch_alter_table('venues', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_venues_area_code'), ['area_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_venues_group_id'), ['group_id'], unique=False)

    with op.batch_alter_table('tree_rooms', schema=None) as batch_op:
        batch_op.add_column(sa.Column('topic', sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tree_rooms', schema=None) as batch_op:
        batch_op.drop_column('topic')

    with op.batch_alter_table('venues', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_venues_group_id'))
        batch_op.drop_index(batch_op.f('ix_venues_area_code'))

    op.drop_table('venues')
