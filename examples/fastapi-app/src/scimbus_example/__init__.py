"""Example FastAPI app: keeps its own users, sessions, groups and memberships in SQLite,
provisioned from scimbus events through `scimbus_consumer`."""
