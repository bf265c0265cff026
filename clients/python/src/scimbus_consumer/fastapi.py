"""FastAPI dependencies that refuse the requests of users who no longer have access.

    from scimbus_consumer.fastapi import require_active_user

    async def session_user(authorization: str = Header("")) -> tuple[str, str] | None:
        ...  # the app's own session lookup: (tenant, user id) or None

    active_user = require_active_user(store, session_user)

    @app.get("/me")
    async def me(user: ActiveUser = Depends(active_user)): ...

The check reads the consumer's access record (`Store.access_of`), written by the same rule
and in the same transaction as the `on_access_revoked` / `on_access_granted` handlers: a
session the app issued before scimbus deactivated the user, removed them from every gating
group or deleted them is refused on its next request, whether or not the app's revocation
handler has ended it yet, and a user the consumer has never seen is refused as well.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request

from .store import Store


@dataclass(frozen=True)
class ActiveUser:
    """A user whose request `require_active_user` let through."""

    tenant: str
    user_id: str


def require_active_user(
    store: Store | Callable[[Request], Store], identify: Callable[..., Awaitable[tuple[str, str] | None]]
) -> Callable[..., Awaitable[ActiveUser]]:
    """A dependency: `identify` (itself a FastAPI dependency, e.g. the app's session lookup)
    names the request's user as `(tenant, user_id)`, or None for no session (401). A user
    without access answers 403. `store` is the consumer's store, or a function of the request
    that returns it (when the store is made in the app's lifespan)."""

    async def dependency(request: Request, who: Any = Depends(identify)) -> ActiveUser:  # noqa: B008
        if who is None:
            raise HTTPException(status_code=401, detail="no session", headers={"WWW-Authenticate": "Bearer"})
        tenant, user_id = who
        chosen = store if isinstance(store, Store) else store(request)
        reading = getattr(chosen, "reading", None) or chosen.transaction  # SqlStore: no write lock
        async with reading() as tx:
            state = await chosen.access_of(tenant, user_id, tx)
        if state is None or not state.granted:
            raise HTTPException(status_code=403, detail="the user has no access to this app")
        return ActiveUser(tenant=tenant, user_id=user_id)

    return dependency
