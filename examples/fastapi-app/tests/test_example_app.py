"""The example app applies scimbus events to its own tables and serves them."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import aio_pika
import httpx
import pytest
from sqlalchemy import func, select

from scimbus_consumer import Outcome
from scimbus_consumer.sql_store import ProcessedEvent
from scimbus_consumer.testing import EventFactory
from scimbus_example.app import Provisioning, create_app
from scimbus_example.db import Session
from scimbus_example.settings import Settings

AMQP_URL = "amqp://guest:guest@{}:{}/".format(
    os.environ.get("SCIMBUS_TEST_AMQP_HOST", "127.0.0.1"), os.environ.get("SCIMBUS_TEST_AMQP_PORT", "5672")
)


@pytest.fixture
def factory():
    return EventFactory(tenant="acme")


@pytest.fixture
async def provisioning(tmp_path):
    prov = Provisioning(Settings(tenants=["acme", "globex"], db_path=str(tmp_path / "app.db")))
    await prov.create_tables()
    yield prov
    await prov.close()


@pytest.fixture
async def client(provisioning):
    app = create_app(provisioning)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as c:
        yield c


async def apply(provisioning, *events):
    return [await provisioning.consumer.handle(e) for e in events]


async def users(client, **params):
    response = await client.get("/users", params=params)
    assert response.status_code == 200
    return {u["id"]: u for u in response.json()}


async def count_sessions(provisioning):
    async with provisioning.sessionmaker() as session:
        return await session.scalar(select(func.count(Session.id)))


async def test_created_and_updated_users_are_listed_with_their_groups(provisioning, client, factory):
    await apply(
        provisioning,
        factory.user_created("u1", user_name="ann@example.com", displayName="Ann", emails=[{"value": "ann@example.com", "primary": True}]),
        factory.user_created("u2", user_name="bob@example.com"),
        factory.group_created("g1", display_name="Engineering"),
        factory.members_added("g1", 1, ["u1", "u2"]),
        factory.group_created("g2", display_name="Admins"),
        factory.members_added("g2", 1, ["u1"]),
        factory.user_updated(
            "u1", 2, user_name="ann@example.com", displayName="Ann Lee", emails=[{"value": "ann@example.com", "primary": True}]
        ),
    )
    listed = await users(client)
    assert listed["u1"]["displayName"] == "Ann Lee" and listed["u1"]["email"] == "ann@example.com"
    assert listed["u1"]["groups"] == ["Admins", "Engineering"]
    assert listed["u2"]["groups"] == ["Engineering"] and listed["u2"]["active"]


async def test_deactivation_disables_the_user_and_revokes_its_sessions_and_reactivation_enables_it(
    provisioning, client, factory
):
    await apply(provisioning, factory.user_created("u1"))
    assert (await client.post("/sessions", json={"tenant": "acme", "user_id": "u1"})).status_code == 201
    assert await count_sessions(provisioning) == 1

    await apply(provisioning, factory.user_deactivated("u1", 2))
    assert not (await users(client))["u1"]["active"]
    assert await count_sessions(provisioning) == 0
    assert (await client.post("/sessions", json={"tenant": "acme", "user_id": "u1"})).status_code == 403

    await apply(provisioning, factory.user_reactivated("u1", 3))
    assert (await users(client))["u1"]["active"]


async def sign_in(client, user_id, tenant="acme"):
    response = await client.post("/sessions", json={"tenant": tenant, "user_id": user_id})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def test_a_session_is_refused_once_the_user_is_deprovisioned_on_every_path(provisioning, client, factory):
    await apply(provisioning, *(factory.user_created(u) for u in ("u1", "u2", "u3")))
    sessions = {u: await sign_in(client, u) for u in ("u1", "u2", "u3")}
    for headers in sessions.values():
        assert (await client.get("/me", headers=headers)).status_code == 200
    assert (await client.get("/me")).status_code == 401
    assert (await client.get("/me", headers={"Authorization": "Bearer nope"})).status_code == 401

    await apply(provisioning, factory.user_deactivated("u1", 2), factory.user_deleted("u2", 2), factory.user_updated("u3", 2, active=False))
    for user, headers in sessions.items():
        assert (await client.get("/me", headers=headers)).status_code in (401, 403), user
    assert await count_sessions(provisioning) == 0
    assert (await client.post("/sessions", json={"tenant": "acme", "user_id": "u9"})).status_code == 403  # unknown


async def test_with_gating_groups_only_members_sign_in_and_removal_ends_their_session(tmp_path, factory):
    settings = Settings(tenants=["acme"], db_path=str(tmp_path / "gated.db"), gating_groups=["crm-users"])
    prov = Provisioning(settings)
    await prov.create_tables()
    try:
        app = create_app(prov)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
            await apply(prov, factory.user_created("u1"), factory.user_created("u2"))
            assert (await client.post("/sessions", json={"tenant": "acme", "user_id": "u1"})).status_code == 403
            await apply(prov, factory.group_created("g1", display_name="crm-users"), factory.members_added("g1", 1, ["u1", "u2"]))
            headers = await sign_in(client, "u1")
            assert (await client.get("/me", headers=headers)).status_code == 200
            await apply(prov, factory.members_removed("g1", 2, ["u1"]))
            assert (await client.get("/me", headers=headers)).status_code in (401, 403)
            assert (await client.post("/sessions", json={"tenant": "acme", "user_id": "u1"})).status_code == 403
            other = await sign_in(client, "u2")
            await apply(prov, factory.group_deleted("g1", 3))
            assert (await client.get("/me", headers=other)).status_code in (401, 403)
    finally:
        await prov.close()


async def test_deleting_a_user_removes_it_its_sessions_and_memberships(provisioning, client, factory):
    await apply(
        provisioning,
        factory.user_created("u1"),
        factory.group_created("g1"),
        factory.members_added("g1", 1, ["u1"]),
    )
    await client.post("/sessions", json={"tenant": "acme", "user_id": "u1"})
    outcomes = await apply(provisioning, factory.members_removed("g1", 2, ["u1"]), factory.user_deleted("u1", 2))
    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED]
    assert await users(client) == {}
    assert await count_sessions(provisioning) == 0


async def test_group_snapshots_replace_memberships_and_deleted_groups_disappear(provisioning, client, factory):
    await apply(
        provisioning,
        factory.user_created("u1"),
        factory.user_created("u2"),
        factory.group_created("g1", display_name="Old"),
        factory.members_added("g1", 1, ["u1"]),
        factory.group_snapshot("g1", 4, ["u2"], display_name="New"),
    )
    listed = await users(client)
    assert listed["u1"]["groups"] == [] and listed["u2"]["groups"] == ["New"]
    await apply(provisioning, factory.group_deleted("g1", 5))
    assert (await users(client))["u2"]["groups"] == []


async def test_tenant_deleted_drops_only_that_tenants_rows(provisioning, client, factory):
    other = EventFactory(tenant="globex")
    await apply(provisioning, factory.user_created("u1"), other.user_created("x1"))
    await apply(provisioning, factory.tenant_deleted())
    assert set(await users(client)) == {"x1"}


async def test_each_event_is_applied_once_and_recorded_in_the_same_database(provisioning, client, factory):
    created = factory.user_created("u1")
    assert await apply(provisioning, created, created) == [Outcome.APPLIED, Outcome.DUPLICATE]
    async with provisioning.sessionmaker() as session:
        assert await session.get(ProcessedEvent, created["id"]) is not None


def test_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "SCIMBUS_EXAMPLE_AMQP_URL": "amqp://u:p@mq:5672/",
            "SCIMBUS_EXAMPLE_SCIMBUS_URL": "https://scimbus.internal",
            "SCIMBUS_EXAMPLE_EVENTS_TOKENS": "acme=tok-a, globex=tok-g",
            "SCIMBUS_EXAMPLE_QUEUE": "crm.scimbus",
            "SCIMBUS_EXAMPLE_DB_PATH": "/data/crm.db",
        }
    )
    assert settings.tenants == ["acme", "globex"] and settings.tokens["globex"] == "tok-g"
    assert settings.queue == "crm.scimbus" and settings.db_path == "/data/crm.db"
    assert "tok-a" not in repr(settings)
    single = Settings.from_env({"SCIMBUS_EXAMPLE_TENANTS": "acme", "SCIMBUS_EXAMPLE_EVENTS_TOKEN": "t"})
    assert single.tokens == {"acme": "t"}
    with pytest.raises(ValueError):
        Settings.from_env({})
    pull = Settings.from_env(
        {
            "SCIMBUS_EXAMPLE_TRANSPORT": "pull",
            "SCIMBUS_EXAMPLE_SCIMBUS_URL": "https://scimbus.internal",
            "SCIMBUS_EXAMPLE_APP_TOKEN": "scimbus_app_x",
            "SCIMBUS_EXAMPLE_TENANT_REFRESH_SECONDS": "5",
        }
    )
    assert pull.transport == "pull" and pull.app_token == "scimbus_app_x" and pull.tenants == []
    assert pull.tenant_refresh_interval == 5.0 and "scimbus_app_x" not in repr(pull)
    for bad in (
        {"SCIMBUS_EXAMPLE_TRANSPORT": "carrier-pigeon", "SCIMBUS_EXAMPLE_APP_TOKEN": "scimbus_app_x"},
        {"SCIMBUS_EXAMPLE_TRANSPORT": "pull", "SCIMBUS_EXAMPLE_APP_TOKEN": "scimbus_app_x"},
    ):
        with pytest.raises(ValueError):
            Settings.from_env(bad)


async def test_the_app_consumes_the_queue_in_its_lifespan(tmp_path, factory):
    name = f"scimbus-test-{uuid.uuid4().hex[:12]}"
    connection = await aio_pika.connect(AMQP_URL)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    settings = Settings(
        amqp_url=AMQP_URL,
        tenants=["acme"],
        db_path=str(tmp_path / "app.db"),
        queue=f"{name}.app",
        exchange=name,
        queue_arguments={"x-expires": 60_000},
        reconnect_interval=0.1,
        auto_delete_dead_letter_exchange=True,
    )
    provisioning = Provisioning(settings)
    applied = asyncio.Queue()

    @provisioning.consumer.on_outcome
    async def observed(event, outcome):
        await applied.put((event.type, outcome))

    app = create_app(provisioning)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
                await asyncio.wait_for(provisioning.consumer.consuming.wait(), 20)
                health = (await client.get("/healthz")).json()
                assert health == {
                    "status": "ok", "transport": "broker", "broker": True, "consuming": True, "state": "consuming",
                    "lag_seconds": None,
                }
                assert (await client.get("/readyz")).status_code == 200
                for event in (factory.user_created("u1", user_name="ann@example.com"), factory.user_deactivated("u1", 2, user_name="ann@example.com")):
                    await exchange.publish(
                        aio_pika.Message(json.dumps(event).encode(), message_id=event["id"]),
                        routing_key=f"acme.user.{event['type'].rsplit('.', 1)[1]}",
                    )
                assert await asyncio.wait_for(applied.get(), 20) == ("scimbus.user.created", Outcome.APPLIED)
                assert await asyncio.wait_for(applied.get(), 20) == ("scimbus.user.deactivated", Outcome.APPLIED)
                listed = (await client.get("/users")).json()
                assert [(u["userName"], u["active"]) for u in listed] == [("ann@example.com", False)]
    finally:
        for queue in (settings.queue, f"{settings.queue}.dlq"):
            await (await connection.channel()).queue_delete(queue)
        await connection.close()


def test_the_documented_logging_set_up_shows_the_consumers_logs_under_uvicorn(capsys):
    import json
    import logging
    import logging.config
    from pathlib import Path

    config = json.loads((Path(__file__).parents[1] / "logging.json").read_text())
    logging.config.dictConfig(config)
    try:
        logging.getLogger("scimbus_consumer").info("connected to RabbitMQ")
        assert "scimbus_consumer: connected to RabbitMQ" in capsys.readouterr().err
    finally:
        for name in ("scimbus_consumer", "scimbus_example"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True
            logger.setLevel(logging.NOTSET)


async def test_readyz_says_503_until_the_consumer_consumes(provisioning, client):
    response = await client.get("/readyz")
    assert response.status_code == 503 and response.json()["state"] == "stopped"
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["broker"] is False
