"""The Pydantic models stay in step with the committed JSON Schemas in openapi/events/."""

from __future__ import annotations

import copy
import json
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, ValidationError

from scimbus_consumer import EVENT_MODELS, UnknownEvent, UserCreated, parse_event, routing_key
from scimbus_consumer.testing import EventFactory

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "openapi" / "events"
SCHEMAS: dict[str, dict[str, Any]] = {
    p.name.removesuffix(".json"): json.loads(p.read_text()) for p in sorted(SCHEMA_DIR.glob("scimbus.*.json"))
}
# Event types described in DESIGN.md and the pull API contract that have no schema file yet.
WITHOUT_SCHEMA_FILE = {"scimbus.user.snapshot", "scimbus.group.snapshot", "scimbus.tenant.deleted"}


def _deref(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/"), f"only local refs are expected, got {ref}"
        node = schema["$defs"][ref.removeprefix("#/$defs/")]
    return node


def _aliases(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    return set(fields), {name for name, f in fields.items() if f.is_required()}


def _submodels(model: type[BaseModel], alias: str) -> list[type[BaseModel]]:
    """The models typing property `alias` (several for a union such as `data | Redacted`);
    empty where the model keeps a free-form map (`previous`) or a scalar."""
    for name, f in model.model_fields.items():
        if (f.alias or name) == alias:
            annotation = f.annotation
            origin = typing.get_origin(annotation)
            if origin in (list, dict):
                options = typing.get_args(annotation)[:1] if origin is list else ()
            else:
                options = typing.get_args(annotation) or (annotation,)
            return [o for o in options if isinstance(o, type) and issubclass(o, BaseModel)]
    raise AssertionError(f"{model.__name__} has no field {alias}")


def _schema_options(root: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    node = _deref(root, node)
    if node.get("type") == "array":
        node = _deref(root, node.get("items", {}))
    options = [_deref(root, o) for o in node["oneOf"]] if "oneOf" in node else [node]
    return [o for o in options if o.get("type") == "object" and "properties" in o]


def mismatches(schema: dict[str, Any], model: type[BaseModel]) -> list[str]:
    """Differences between an event schema and its model: required sets must be equal,
    declared properties (other than those forbidden with `false`) must be model fields and
    vice versa, recursively through object-valued properties (data, resource, meta, chunk,
    snapshot members); each option of a `oneOf` must fit one model of the field's union."""
    return _compare(schema, schema, model, "<envelope>")


def _compare(root: dict[str, Any], node: dict[str, Any], model: type[BaseModel], where: str) -> list[str]:
    problems = []
    fields, required = _aliases(model)
    declared = {k for k, v in node.get("properties", {}).items() if v is not False}
    schema_required = set(node.get("required", []))
    if schema_required != required:
        problems.append(f"{where}: schema requires {sorted(schema_required)}, model requires {sorted(required)}")
    if declared - fields:
        problems.append(f"{where}: schema properties missing from the model: {sorted(declared - fields)}")
    if fields - declared:
        problems.append(f"{where}: model fields the schema does not declare: {sorted(fields - declared)}")
    for prop in sorted(declared & fields):
        submodels = _submodels(model, prop)
        options = _schema_options(root, node["properties"][prop])
        if not submodels or not options:
            continue
        for option in options:
            results = [_compare(root, option, sub, f"{where}.{prop}") for sub in submodels]
            if all(results):
                problems += min(results, key=len)
        if len(submodels) > len(options):
            problems.append(f"{where}.{prop}: the model allows more shapes than the schema")
    return problems


def _instances(event_type: str) -> list[dict[str, Any]]:
    """Minimal and fuller instances of each type, built like scimbus builds them."""
    f = EventFactory(tenant="acme-1")
    f.sequence = 41
    build = {
        "scimbus.user.created": lambda: [f.user_created("u1"), f.user_created("u2", displayName="Ann", externalId="x", title="Dr")],
        "scimbus.user.updated": lambda: [f.user_updated("u1", 2), f.user_updated("u1", 3, previous={"displayName": "A", "title": None}, displayName="B")],
        "scimbus.user.deactivated": lambda: [f.user_deactivated("u1", 4)],
        "scimbus.user.reactivated": lambda: [f.user_reactivated("u1", 5)],
        "scimbus.user.deleted": lambda: [f.user_deleted("u1", 6)],
        "scimbus.group.created": lambda: [f.group_created("g1"), f.group_created("g2", externalId="e")],
        "scimbus.group.updated": lambda: [f.group_updated("g1", 2, displayName="G")],
        "scimbus.group.deleted": lambda: [f.group_deleted("g1", 3)],
        "scimbus.group.members_added": lambda: [f.members_added("g1", 1, ["u1"]), f.members_added("g1", 2, ["u2", "g3"], chunk=(2, 2))],
        "scimbus.group.members_removed": lambda: [f.members_removed("g1", 2, ["u1"])],
        "scimbus.user.snapshot": lambda: [f.user_snapshot("u1", 3)],
        "scimbus.group.snapshot": lambda: [f.group_snapshot("g1", 4, ["u1", ("g2", "Group")]), f.group_snapshot("g2", 1)],
        "scimbus.tenant.created": lambda: [f.tenant_created()],
        "scimbus.tenant.deleted": lambda: [f.tenant_deleted()],
    }
    return build[event_type]()


def test_the_schema_directory_is_found_and_holds_the_ten_catalogued_types():
    assert len(SCHEMAS) >= 10, SCHEMA_DIR


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_file_describes_a_type_the_models_know(name):
    schema = SCHEMAS[name]
    event_type = schema["properties"]["type"]["const"]
    assert event_type == name
    assert event_type in EVENT_MODELS, f"{event_type} has a schema but no model"


def test_every_model_type_has_a_schema_file_or_is_one_of_the_documented_exceptions():
    assert set(EVENT_MODELS) - set(SCHEMAS) <= WITHOUT_SCHEMA_FILE
    assert set(EVENT_MODELS) >= set(SCHEMAS)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_required_attributes_and_properties_match_the_schema(name):
    assert mismatches(SCHEMAS[name], EVENT_MODELS[name]) == []


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_comparison_notices_a_new_required_attribute(name):
    grown = copy.deepcopy(SCHEMAS[name])
    grown["$defs"]["data"]["required"].append("newThing")
    grown["$defs"]["data"]["properties"]["newThing"] = {"type": "string"}
    assert any("newThing" in p for p in mismatches(grown, EVENT_MODELS[name]))
    grown = copy.deepcopy(SCHEMAS[name])
    grown["required"].append("traceparent")
    grown["properties"]["traceparent"] = {"type": "string"}
    assert any("traceparent" in p for p in mismatches(grown, EVENT_MODELS[name]))


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_built_instances_are_valid_against_the_schema_and_parse_into_the_model(event_type):
    for instance in _instances(event_type):
        if event_type in SCHEMAS:
            jsonschema.Draft202012Validator(SCHEMAS[event_type]).validate(instance)
        event = parse_event(json.dumps(instance).encode())
        assert type(event) is EVENT_MODELS[event_type]
        assert event.id == instance["id"] and event.sequence_number == int(instance["sequence"])
        assert routing_key(event) == f"acme-1.{event_type.split('.')[1]}.{event_type.split('.')[2]}"


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_unknown_attributes_are_ignored_in_envelope_and_data(event_type):
    instance = _instances(event_type)[0]
    instance["addedlater"] = "x"
    instance["data"]["addedLater"] = {"nested": True}
    event = parse_event(instance)
    assert type(event) is EVENT_MODELS[event_type]
    assert "addedlater" not in event.model_dump()


def test_unknown_scim_attributes_of_a_resource_are_kept():
    event = parse_event(EventFactory().user_created("u1", title="Dr", **{"urn:x:ext": {"a": 1}}))
    assert isinstance(event, UserCreated)
    assert event.data.resource.model_extra == {"title": "Dr", "urn:x:ext": {"a": 1}}
    assert event.data.resource.is_active


def test_an_unknown_event_type_parses_as_unknown_event():
    instance = EventFactory().tenant_deleted()
    instance["type"] = "scimbus.user.merged"
    event = parse_event(instance)
    assert isinstance(event, UnknownEvent) and event.type == "scimbus.user.merged"


def test_a_known_type_missing_a_required_data_attribute_is_rejected():
    instance = EventFactory().members_added("g1", 2, ["u1"])
    del instance["data"]["chunk"]
    with pytest.raises(ValidationError):
        parse_event(instance)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_redacted_data_is_accepted_where_the_schema_allows_it(name):
    instance = _instances(name)[0]
    instance["data"] = {"redacted": True}
    allowed = jsonschema.Draft202012Validator(SCHEMAS[name]).is_valid(instance)
    if allowed:
        event = parse_event(instance)
        assert event.redacted and event.version is None
    else:
        with pytest.raises(ValidationError):
            parse_event(instance)


def test_typed_users_and_groups_come_from_scim2_models_with_the_extensions_asked_for(factory):
    from scim2_models import EnterpriseUser, Extension

    from scimbus_consumer import parse_event

    class Hobby(Extension):
        __schema__ = "urn:example:hobby:2.0:User"
        level: int | None = None

    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    raw = factory.user_created(
        "u1",
        schemas=["urn:ietf:params:scim:schemas:core:2.0:User", enterprise, "urn:example:hobby:2.0:User"],
        name={"givenName": "Grace", "familyName": "Hopper"},
        emails=[{"value": "grace@contoso.com", "type": "work", "primary": True}],
        phoneNumbers=[{"value": "+1 555 0100", "type": "mobile"}],
        **{enterprise: {"department": "Research", "manager": {"value": "m1"}}, "urn:example:hobby:2.0:User": {"level": 3}},
        unregistered="kept on the lenient model",
    )
    user = parse_event(raw).data.resource
    typed = user.typed(EnterpriseUser, Hobby)
    assert typed.name.given_name == "Grace" and typed.emails[0].value == "grace@contoso.com"
    assert typed.phone_numbers[0].type == "mobile" and typed.active is True
    assert typed[EnterpriseUser].department == "Research" and typed[EnterpriseUser].manager.value == "m1"
    assert typed[Hobby].level == 3
    assert user.model_extra["unregistered"] == "kept on the lenient model"
    assert user.typed()[EnterpriseUser].department == "Research"  # the enterprise extension by default

    group = parse_event(factory.group_created("g1", display_name="Engineering")).data.resource.typed()
    assert group.display_name == "Engineering" and group.id == "g1"


def test_the_package_under_test_is_the_installed_wheel_and_it_is_typed():
    import importlib.metadata
    import pathlib

    import scimbus_consumer

    files = {str(f) for f in importlib.metadata.files("scimbus-consumer") or []}
    assert "scimbus_consumer/py.typed" in files
    assert "site-packages" in pathlib.Path(scimbus_consumer.__file__).parts, scimbus_consumer.__file__
