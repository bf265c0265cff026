"""A consumer process for test_broker's poison-message test (SqlStore on a SQLite file, so
started attempts are counted across processes): its handler kills the process (os._exit)
on the user named "poison" and prints the id of every other user it handles."""

from __future__ import annotations

import asyncio
import os
import sys

from sqlalchemy.ext.asyncio import async_sessionmaker

from scimbus_consumer import Consumer
from scimbus_consumer.sql_store import SqlStore, sqlite_engine


async def main(amqp_url: str, exchange: str, queue: str, db_path: str) -> None:
    consumer = Consumer(
        amqp_url=amqp_url,
        queue=queue,
        exchange=exchange,
        routing_keys=["acme.user.*"],
        queue_arguments={"x-expires": 60_000},
        auto_delete_dead_letter_exchange=True,
        catch_up=False,
        store=SqlStore(async_sessionmaker(sqlite_engine(db_path), expire_on_commit=False)),
        crash_limit=2,
    )
    await SqlStore.create_tables(consumer.store.sessionmaker.kw["bind"])

    @consumer.on_any
    async def handle(event, ctx):
        if event.data.resource.user_name == "poison":
            os._exit(3)  # the process dies mid-handler, every time
        print(event.data.resource.id, flush=True)

    await consumer.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
