"""Consumer metrics through prometheus-client."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from scimbus_consumer import HandlerFailed
from scimbus_consumer.metrics import PrometheusMetrics


async def test_outcomes_lag_retries_access_and_effects_are_counted(make_consumer, factory):
    registry = CollectorRegistry()
    consumer = make_consumer(metrics=PrometheusMetrics(registry), max_attempts=2)
    fail = {"u2"}

    @consumer.on("scimbus.user.created")
    async def created(event, ctx):
        if event.data.resource.id in fail:
            raise RuntimeError("bug")
        await consumer.defer(ctx, "email", key=event.id, payload={})

    @consumer.effect("email")
    async def send(effect):
        pass

    first = factory.user_created("u1")
    await consumer.handle(first)
    await consumer.handle(first)
    try:
        await consumer.handle(factory.user_created("u2"))
    except HandlerFailed:
        pass
    await consumer.handle(factory.user_deactivated("u1", 2))
    await consumer.effects.drain_once()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("scimbus_consumer_events_total", type="scimbus.user.created", outcome="applied") == 1
    assert value("scimbus_consumer_events_total", type="scimbus.user.created", outcome="duplicate") == 1
    assert value("scimbus_consumer_retries_total", type="scimbus.user.created") == 1
    assert value("scimbus_consumer_event_lag_seconds_count", type="scimbus.user.created") == 1
    assert value("scimbus_consumer_access_changes_total", granted="true", reason="provisioned") == 1
    assert value("scimbus_consumer_access_changes_total", granted="false", reason="deactivated") == 1
    assert value("scimbus_consumer_effects_total", kind="email", result="done") == 1
