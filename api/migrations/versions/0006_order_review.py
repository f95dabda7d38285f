"""order review: fraud score and review status of orders, indexes of the order-time fraud features

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import api.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Partial: only refused logins are counted at order time, and they are a sliver of the outbox.
FAILED_LOGIN = sa.text("event_type = 'user.login_failed'")


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fraud_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("fraud_model_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("review_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("reviewed_by", BigId, nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", api.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_reviewed_by_users"), "users", ["reviewed_by"], ["id"]
        )
        batch_op.create_index(batch_op.f("ix_orders_review_status"), ["review_status"], unique=False)
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_failed_login",
            ["entity_id", "occurred_at"],
            unique=False,
            sqlite_where=FAILED_LOGIN,
            postgresql_where=FAILED_LOGIN,
        )
    with op.batch_alter_table("product_views", schema=None) as batch_op:
        batch_op.create_index("ix_product_views_user_created", ["user_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("product_views", schema=None) as batch_op:
        batch_op.drop_index("ix_product_views_user_created")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_failed_login")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_review_status"))
        batch_op.drop_constraint(batch_op.f("fk_orders_reviewed_by_users"), type_="foreignkey")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("review_status")
        batch_op.drop_column("fraud_model_version")
        batch_op.drop_column("fraud_score")
