"""Typed scimbus events: Pydantic v2 models of the CloudEvents 1.0 envelopes in openapi/events/.

Envelopes and `data` ignore attributes they do not know (the contract evolves additively);
the SCIM resources keep them (`model_extra`), because scimbus passes unknown SCIM attributes
through as the client sent them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

_IGNORE = ConfigDict(extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True)
_OPEN = ConfigDict(extra="allow", frozen=True, alias_generator=to_camel, populate_by_name=True)


class ScimMeta(BaseModel):
    model_config = _IGNORE

    resource_type: str
    created: datetime
    last_modified: datetime
    location: str
    version: str


class ScimUser(BaseModel):
    """RFC 7643 §4.1 User as scimbus returns it, without `groups`; unknown attributes kept."""

    model_config = _OPEN

    schemas: list[str]
    id: str
    user_name: str
    meta: ScimMeta
    external_id: str | None = None
    display_name: str | None = None
    active: bool | None = None

    @property
    def is_active(self) -> bool:
        """`active` with the RFC default: an absent `active` means true."""
        return self.active is not False

    def typed(self, *extensions: type[Any]) -> Any:
        """The full RFC 7643 model of this user from scim2-models (`pip install
        scimbus-consumer[models]`): `name`, `emails`, `phoneNumbers`, `addresses`, … typed,
        with the enterprise extension and the app's registered extensions given as
        `scim2_models.Extension` subclasses (default: `EnterpriseUser`), read as
        `user[EnterpriseUser].department`. Attributes of no schema given are left out (they
        stay in this model's `model_extra`). scim2-models validates strictly: a value RFC 7643
        refuses (an email without `@`) raises `pydantic.ValidationError`."""
        from scim2_models import EnterpriseUser, User

        return _typed(self, User, extensions or (EnterpriseUser,))


class ScimUserWithActive(ScimUser):
    """A user whose `active` is always present (`scimbus.user.deactivated` carries false)."""

    active: bool


class ScimGroup(BaseModel):
    """RFC 7643 §4.2 Group without `members` (membership travels in its own events)."""

    model_config = _OPEN

    schemas: list[str]
    id: str
    display_name: str
    meta: ScimMeta
    external_id: str | None = None

    def typed(self, *extensions: type[Any]) -> Any:
        """The scim2-models `Group` of this group (without `members`, which travel in their
        own events), with the given `scim2_models.Extension` subclasses; see `ScimUser.typed`."""
        from scim2_models import Group

        return _typed(self, Group, extensions)


def _typed(resource: BaseModel, base: Any, extensions: tuple[type[Any], ...]) -> Any:
    from scim2_models import Context

    model = base[Union[extensions]] if len(extensions) > 1 else base[extensions[0]] if extensions else base  # noqa: UP007
    urns = {str(e.__schema__) for e in extensions}
    known = {f.validation_alias or name for name, f in model.model_fields.items()} | urns
    data = resource.model_dump(by_alias=True, exclude_none=True, mode="json")
    data = {k: v for k, v in data.items() if k in known}
    data["schemas"] = [u for u in data.get("schemas", []) if u == str(base.__schema__) or u in urns]
    return model.model_validate(data, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)


class Chunk(BaseModel):
    model_config = _IGNORE

    index: int
    count: int


class MemberRef(BaseModel):
    model_config = _IGNORE

    value: str
    type: str
    """`User` or `Group`."""


class UserChangeData(BaseModel):
    model_config = _IGNORE

    resource: ScimUser
    version: int
    changed: list[str]
    previous: dict[str, Any]


class DeactivationData(UserChangeData):
    resource: ScimUserWithActive


class Redacted(BaseModel):
    """What erasure leaves of an event's `data` (the envelope is kept): the payload is gone,
    so the consumer resyncs the resource instead of calling handlers."""

    model_config = _IGNORE

    redacted: Literal[True]


class GroupChangeData(BaseModel):
    model_config = _IGNORE

    resource: ScimGroup
    version: int
    changed: list[str]
    previous: dict[str, Any]


class MembersData(BaseModel):
    model_config = _IGNORE

    group: str
    version: int
    members: list[str]
    chunk: Chunk


class UserSnapshotData(BaseModel):
    model_config = _IGNORE

    resource: ScimUser
    version: int


class GroupSnapshotData(BaseModel):
    model_config = _IGNORE

    resource: ScimGroup
    version: int
    members: list[MemberRef]


class TenantCreatedData(BaseModel):
    model_config = _IGNORE

    tenant: str


class TenantDeletedData(BaseModel):
    model_config = _IGNORE

    tenant: str


class Envelope(BaseModel):
    """The CloudEvents 1.0 structured-mode envelope every scimbus event shares."""

    model_config = _IGNORE

    specversion: str
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    datacontenttype: str
    dataschema: str
    tenant: str
    sequence: str
    correlationid: str | None = None
    """The id of the request that made the change (scimbus's `X-Request-Id`)."""
    txn: str | None = None
    """The write transaction that committed the event: the events of one transaction share
    it (a security event token's `txn`); absent on events stored before it existed."""
    traceparent: str | None = None
    """CloudEvents distributed-tracing extension: the W3C `traceparent` of the request that
    made the change (naming scimbus's server span of it); absent for changes no request made.
    The consumer's span of the event continues that trace (`scimbus_consumer.tracing`)."""
    tracestate: str | None = None
    """The W3C `tracestate` that came with `traceparent`, when the request had one."""

    @property
    def sequence_number(self) -> int:
        """`sequence` as an integer (the wire form is a 19-digit zero-padded string)."""
        return int(self.sequence)

    @property
    def resource_type(self) -> str:
        """First part of `subject`: `Users`, `Groups` or `Tenants`."""
        return self.subject.split("/", 1)[0]

    @property
    def resource_id(self) -> str:
        return self.subject.split("/", 1)[1] if "/" in self.subject else ""

    @property
    def version(self) -> int | None:
        """`data.version`, or None for events without one (`scimbus.tenant.*`, redacted data)."""
        return getattr(getattr(self, "data", None), "version", None)

    @property
    def redacted(self) -> bool:
        """True when erasure removed `data` (only the envelope is left)."""
        return isinstance(getattr(self, "data", None), Redacted)


class UserCreated(Envelope):
    type: Literal["scimbus.user.created"]
    data: UserChangeData | Redacted


class UserUpdated(Envelope):
    type: Literal["scimbus.user.updated"]
    data: UserChangeData | Redacted


class UserDeactivated(Envelope):
    type: Literal["scimbus.user.deactivated"]
    data: DeactivationData | Redacted


class UserReactivated(Envelope):
    type: Literal["scimbus.user.reactivated"]
    data: UserChangeData | Redacted


class UserDeleted(Envelope):
    type: Literal["scimbus.user.deleted"]
    data: UserChangeData | Redacted


class GroupCreated(Envelope):
    type: Literal["scimbus.group.created"]
    data: GroupChangeData | Redacted


class GroupUpdated(Envelope):
    type: Literal["scimbus.group.updated"]
    data: GroupChangeData | Redacted


class GroupDeleted(Envelope):
    type: Literal["scimbus.group.deleted"]
    data: GroupChangeData | Redacted


class GroupMembersAdded(Envelope):
    type: Literal["scimbus.group.members_added"]
    data: MembersData | Redacted


class GroupMembersRemoved(Envelope):
    type: Literal["scimbus.group.members_removed"]
    data: MembersData | Redacted


class UserSnapshot(Envelope):
    type: Literal["scimbus.user.snapshot"]
    data: UserSnapshotData


class GroupSnapshot(Envelope):
    type: Literal["scimbus.group.snapshot"]
    data: GroupSnapshotData


class TenantCreated(Envelope):
    """A tenant's first event (sequence 1): how an application credential's consumer learns
    of a new tenant. No version: deduplicated by its id like `TenantDeleted`."""

    type: Literal["scimbus.tenant.created"]
    data: TenantCreatedData | Redacted


class TenantDeleted(Envelope):
    type: Literal["scimbus.tenant.deleted"]
    data: TenantDeletedData | Redacted


class UnknownEvent(Envelope):
    """An event type this version of the package does not know (a later additive type)."""

    data: Any = None


EVENT_MODELS: dict[str, type[Envelope]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        UserCreated,
        UserUpdated,
        UserDeactivated,
        UserReactivated,
        UserDeleted,
        GroupCreated,
        GroupUpdated,
        GroupDeleted,
        GroupMembersAdded,
        GroupMembersRemoved,
        UserSnapshot,
        GroupSnapshot,
        TenantCreated,
        TenantDeleted,
    )
}
"""Every event type this package knows, by CloudEvents `type`."""

KnownEvent = Annotated[
    Union[
        UserCreated,
        UserUpdated,
        UserDeactivated,
        UserReactivated,
        UserDeleted,
        GroupCreated,
        GroupUpdated,
        GroupDeleted,
        GroupMembersAdded,
        GroupMembersRemoved,
        UserSnapshot,
        GroupSnapshot,
        TenantCreated,
        TenantDeleted,
    ],
    Field(discriminator="type"),
]
Event = Union[KnownEvent, UnknownEvent]

_KNOWN = TypeAdapter(KnownEvent)

USER_DELTAS = frozenset(
    {
        "scimbus.user.created",
        "scimbus.user.updated",
        "scimbus.user.deactivated",
        "scimbus.user.reactivated",
        "scimbus.user.deleted",
    }
)
GROUP_DELTAS = frozenset(
    {
        "scimbus.group.created",
        "scimbus.group.updated",
        "scimbus.group.deleted",
        "scimbus.group.members_added",
        "scimbus.group.members_removed",
    }
)
SNAPSHOTS = frozenset({"scimbus.user.snapshot", "scimbus.group.snapshot"})
DELETIONS = frozenset({"scimbus.user.deleted", "scimbus.group.deleted"})


def parse_event(raw: bytes | str | dict[str, Any]) -> Envelope:
    """Parse one envelope (AMQP body, pull API item) into its typed model.

    A known `type` is validated by its model (pydantic.ValidationError when it does not
    match); an unknown `type` with a valid envelope becomes an `UnknownEvent`.
    """
    if isinstance(raw, dict):
        event_type = raw.get("type")
        if event_type in EVENT_MODELS:
            return _KNOWN.validate_python(raw)
        return UnknownEvent.model_validate(raw)
    envelope = Envelope.model_validate_json(raw)
    if envelope.type in EVENT_MODELS:
        return _KNOWN.validate_json(raw)
    return UnknownEvent.model_validate_json(raw)


def routing_key(event: Envelope) -> str:
    """`<tenant>.<resource>.<action>`: the routing key scimbus publishes the event with."""
    _, resource, action = event.type.split(".", 2)
    return f"{event.tenant}.{resource}.{action}"
