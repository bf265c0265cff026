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

`set_push_router` receives security event tokens scimbus pushes (RFC 8935), see
`scimbus_consumer.sets`.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse

from .sets import JwksUnavailable, SetError, SetReceiver
from .store import Store

log = logging.getLogger("scimbus_consumer.sets")


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


def set_push_router(
    receiver: SetReceiver | Callable[[Request], SetReceiver],
    *,
    path: str = "",
    authorization: str | Callable[[Request], str | None] | None = None,
) -> APIRouter:
    """An `APIRouter` with `POST {path}` receiving the SETs scimbus pushes (RFC 8935), one
    per request; mount it with `app.include_router(router, prefix="/scim-events")`.

    - `authorization` given (the value registered with the receiver, e.g. `Bearer s3cret`):
      a request without it answers 401 `{"err": "authentication_failed"}`.
    - A SET that does not verify or cannot be processed ever answers 400 with RFC 8935's
      `{"err", "description"}` (`invalid_request` parks it in scimbus; `invalid_key`,
      `invalid_issuer`, `invalid_audience` hold the receiver until fixed).
    - Accepted (applied, or a duplicate `jti`, or nothing to do): 202 once committed.
    - Anything transient (a handler or the database failing, the JWKS unreachable): 503,
      and scimbus sends the same SET again later; never 400, which would park it for good.

    `receiver` is a `SetReceiver`, or a function of the request that returns it (when it
    is made in the app's lifespan); `authorization` likewise."""
    router = APIRouter()

    @router.post(path, status_code=202, response_class=Response)
    async def receive_set(request: Request) -> Response:
        expected = authorization(request) if callable(authorization) else authorization
        if expected is not None:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return JSONResponse(
                    {"err": "authentication_failed", "description": "missing or wrong Authorization"}, status_code=401
                )
        chosen = receiver if isinstance(receiver, SetReceiver) else receiver(request)
        try:
            token = (await request.body()).decode("ascii").strip()
            outcome = await chosen.receive(token)
        except UnicodeDecodeError:
            return JSONResponse({"err": "invalid_request", "description": "the body is not a compact JWS"}, status_code=400)
        except SetError as exc:
            log.warning("refused a pushed SET: %s", exc)
            return JSONResponse(exc.body(), status_code=400)
        except JwksUnavailable as exc:
            log.warning("%s; the SET will be sent again", exc)
            return JSONResponse({"err": "temporarily_unavailable", "description": "try again later"}, status_code=503)
        except Exception:  # noqa: BLE001 - a handler or the store failed: scimbus resends
            log.exception("processing a pushed SET failed; it will be sent again")
            return JSONResponse({"err": "temporarily_unavailable", "description": "try again later"}, status_code=503)
        log.debug("pushed SET processed: %s", outcome)
        return Response(status_code=202)

    return router
