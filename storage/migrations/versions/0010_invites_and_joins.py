"""case invites one by one; outbox rows held for a first join

Revision ID: 0010_invites_and_joins
Revises: 0009_introductions
Create Date: 2026-12-03 12:59:07.566465
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types


revision: str = '0010_invites_and_joins'
down_revision: str | None = '0009_introductions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('mediation_cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('to_invite', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('invite_tries', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('invite_retry_at', storage.types.UTCDateTime(timezone=True), nullable=True))
    # Until now "invited" held everyone the room was for, whether or not it existed yet:
    # that list is what to invite; only cases with a room had really invited them.
    cases = sa.table('mediation_cases', sa.column('to_invite', sa.JSON()),
                     sa.column('invited', sa.JSON()), sa.column('room_id', sa.String()))
    op.execute(cases.update().values(to_invite=cases.c.invited))
    op.execute(cases.update().where(cases.c.room_id.is_(None)).values(invited=[]))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('join_wait_until', storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_join_wait_until'), ['join_wait_until'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_join_wait_until'))
        batch_op.drop_column('join_wait_until')

    with op.batch_alter_table('mediation_cases', schema=None) as batch_op:
        batch_op.drop_column('invite_retry_at')
        batch_op.drop_column('invite_tries')
        batch_op.drop_column('to_invite')
