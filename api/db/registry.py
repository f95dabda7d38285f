"""Imports every domain's models so Base.metadata knows all tables (Alembic and tests use it)."""

from api.alerts import models as alerts
from api.auth import models as auth
from api.calls import models as calls
from api.catalog import models as catalog
from api.conversations import models as conversations
from api.db.base import Base
from api.notifications import models as notifications
from api.orders import models as orders
from api.outbox import models as outbox
from api.recommendations import models as recommendations
from api.reviews import models as reviews
from api.shops import models as shops
from api.tracking import models as tracking

metadata = Base.metadata

__all__ = [
    "alerts",
    "auth",
    "calls",
    "catalog",
    "conversations",
    "metadata",
    "notifications",
    "orders",
    "outbox",
    "recommendations",
    "reviews",
    "shops",
    "tracking",
]
