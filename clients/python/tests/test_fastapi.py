"""`require_active_user` refuses by the consumer's access record, whatever the app's own
session table says."""

from __future__ import annotations

import httpx
from fastapi import Depends, FastAPI, Header

from scimbus_consumer import MemoryStore
from scimbus_consumer.fastapi import ActiveUser, require_active_user


async def test_a_session_of_a_deprovisioned_or_unknown_user_is_refused(make_consumer, factory):
    store = MemoryStore()
    consumer = make_consumer(store=store)

    async def identify(x_user: str = Header("")) -> tuple[str, str] | None:
        return ("acme", x_user) if x_user else None  # a session the app never ends

    app = FastAPI()

    @app.get("/me")
    async def me(user: ActiveUser = Depends(require_active_user(store, identify))):  # noqa: B008
        return {"id": user.user_id}

    async def status(user: str) -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
            return (await client.get("/me", headers={"X-User": user} if user else {})).status_code

    await consumer.handle(factory.user_created("u1"))
    assert await status("u1") == 200
    assert await status("") == 401
    assert await status("u9") == 403
    await consumer.handle(factory.user_deactivated("u1", 2))
    assert await status("u1") == 403
    await consumer.handle(factory.user_reactivated("u1", 3))
    assert await status("u1") == 200
