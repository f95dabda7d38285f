"""calls: history indexes on video_calls

The `video_calls` table itself came with 0001 (seed 001 §1). The calls API reads a user's history as
caller or as receiver, newest first: one (user, created_at) index per side lets PostgreSQL combine
them (BitmapOr) and SQLite use each half of the OR, instead of scanning every call. The missed-call
sweep filters on `status`, already indexed in 0001. No other schema change: the call's state lives
in its row, which is what lets the ring timer survive a restart.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("video_calls", schema=None) as batch_op:
        batch_op.create_index("ix_video_calls_caller_created", ["caller_id", "created_at"], unique=False)
        batch_op.create_index("ix_video_calls_receiver_created", ["receiver_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("video_calls", schema=None) as batch_op:
        batch_op.drop_index("ix_video_calls_receiver_created")
        batch_op.drop_index("ix_video_calls_caller_created")
