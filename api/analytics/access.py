"""Who may read analytics: staff (analysts and admins) see everything, a seller sees their shops."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.core.deps import Principal, require_principal
from api.core.errors import Forbidden


async def require_staff(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if not principal.is_staff:
        raise Forbidden("Analyst or admin role required")
    return principal


StaffUser = Annotated[Principal, Depends(require_staff)]


def may_read_shop(principal: Principal, owner_id: int) -> bool:
    return principal.is_staff or principal.user_id == owner_id
