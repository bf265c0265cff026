use scim_v2::models::errors::ScimType;
use serde_json::{Map, Value, json};

use super::*;
use crate::scim::schema::{ENTERPRISE_USER_URN as ENT, GROUP_URN, Mutability, Registry, USER_URN};
use crate::scim::validate::validate_resource;

const UID: &str = "2819c223-7f76-453a-919d-413861904646";
const GID: &str = "e9e30dba-f08f-4109-8486-d5c6a331660a";

fn body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP_URN], "Operations": ops})
}

fn stored_user(user: Value) -> Map<String, Value> {
    let r = Registry::core();
    validate_resource(r, r.user(), user).unwrap()
}

fn bjensen() -> Map<String, Value> {
    stored_user(json!({
        "schemas": [USER_URN],
        "userName": "bjensen",
        "displayName": "Babs",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [
            {"value": "b@work.example", "type": "work", "primary": true},
            {"value": "b@home.example", "type": "home"}
        ],
        "active": true
    }))
}

fn patch_user(stored: &Map<String, Value>, ops: Value) -> Result<PatchOutcome, ScimError> {
    let r = Registry::core();
    let ops = parse_patch(body(ops))?;
    apply(r, r.user(), stored, UID, &ops)
}

/// Patches bjensen and checks the result is canonical (a PUT of it stores the same).
fn patched(ops: Value) -> Map<String, Value> {
    let doc = patch_user(&bjensen(), ops).unwrap().document;
    assert_eq!(
        stored_user(Value::Object(doc.clone())),
        doc,
        "not canonical"
    );
    doc
}

fn error_of(result: Result<PatchOutcome, ScimError>) -> (u16, Option<ScimType>) {
    let err = result.unwrap_err();
    (err.status, err.scim_type)
}

fn user_error(ops: Value) -> Option<ScimType> {
    let (status, scim_type) = error_of(patch_user(&bjensen(), ops));
    assert_eq!(status, 400);
    scim_type
}

fn stored_group() -> Map<String, Value> {
    let r = Registry::core();
    validate_resource(
        r,
        r.group(),
        json!({"schemas": [GROUP_URN], "displayName": "Admins"}),
    )
    .unwrap()
}

fn patch_group(ops: Value) -> Result<PatchOutcome, ScimError> {
    let r = Registry::core();
    let ops = parse_patch(body(ops))?;
    apply(r, r.group(), &stored_group(), GID, &ops)
}

fn member(value: &str) -> MemberRef {
    MemberRef {
        value: value.to_owned(),
        member_type: None,
    }
}

// --- parsing the body -------------------------------------------------------------------

#[test]
fn a_body_without_the_patch_op_urn_is_invalid_syntax() {
    for bad in [
        json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]}),
        json!({"schemas": [USER_URN], "Operations": [{"op": "add", "path": "title", "value": "x"}]}),
        json!([]),
    ] {
        let err = parse_patch(bad).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
    }
}

#[test]
fn operations_must_be_a_non_empty_array() {
    for ops in [json!([]), json!({}), json!(null)] {
        let err = parse_patch(body(ops)).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
    }
}

#[test]
fn op_names_are_matched_case_insensitively() {
    let ops = parse_patch(json!({
        "schemas": ["URN:IETF:PARAMS:SCIM:API:MESSAGES:2.0:PATCHOP"],
        "operations": [
            {"op": "Add", "path": "title", "value": "x"},
            {"op": "Replace", "path": "title", "value": "y"},
            {"Op": "REMOVE", "Path": "title"}
        ]
    }))
    .unwrap();
    let kinds: Vec<Op> = ops.iter().map(|o| o.op).collect();
    assert_eq!(kinds, [Op::Add, Op::Replace, Op::Remove]);
}

#[test]
fn an_unknown_op_is_invalid_syntax() {
    let err = parse_patch(body(
        json!([{"op": "merge", "path": "title", "value": "x"}]),
    ))
    .unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax));
}

#[test]
fn remove_without_a_path_is_no_target() {
    for path in [json!(null), json!("  ")] {
        let err = parse_patch(body(json!([{"op": "remove", "path": path}]))).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::NoTarget));
    }
    let err = parse_patch(body(json!([{"op": "remove"}]))).unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::NoTarget));
}

#[test]
fn add_or_replace_without_a_value_or_with_a_pathless_scalar_is_invalid_syntax() {
    for op in [
        json!({"op": "add", "path": "title"}),
        json!({"op": "replace", "value": "x"}),
        json!({"op": "add", "value": ["x"]}),
    ] {
        let err = parse_patch(body(json!([op]))).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidSyntax), "{op}");
    }
}

#[test]
fn a_malformed_path_is_invalid_path() {
    for path in [
        "emails[type eq",
        "name.",
        "a b",
        "$ref",
        "name.family.given",
    ] {
        let err = parse_patch(body(json!([{"op": "remove", "path": path}]))).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{path}");
    }
}

// --- simple, sub-attribute and URN paths -----------------------------------------------

#[test]
fn replace_with_a_path_sets_the_attribute_whatever_the_case_of_its_name() {
    let doc = patched(json!([{"op": "Replace", "path": "DISPLAYNAME", "value": "Barbara J."}]));
    assert_eq!(doc["displayName"], "Barbara J.");
    assert!(!doc.contains_key("DISPLAYNAME"));
}

#[test]
fn add_with_a_path_creates_an_attribute_that_had_no_value() {
    let doc = patched(json!([{"op": "add", "path": "title", "value": "Tour Guide"}]));
    assert_eq!(doc["title"], "Tour Guide");
}

#[test]
fn string_booleans_are_coerced_by_the_attribute_type() {
    let doc = patched(json!([
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": "emails[primary eq \"True\"].display", "value": "Work"}
    ]));
    assert_eq!(doc["active"], false);
    assert_eq!(doc["emails"][0]["display"], "Work");
}

#[test]
fn a_sub_attribute_path_sets_that_sub_attribute_and_keeps_the_others() {
    let doc = patched(json!([{"op": "replace", "path": "name.GIVENNAME", "value": "Babs"}]));
    assert_eq!(
        doc["name"],
        json!({"givenName": "Babs", "familyName": "Jensen"})
    );
    let doc = patched(json!([{"op": "remove", "path": "name.givenName"}]));
    assert_eq!(doc["name"], json!({"familyName": "Jensen"}));
}

#[test]
fn removing_the_last_sub_attribute_unassigns_the_complex_attribute() {
    let doc = patched(json!([
        {"op": "remove", "path": "name.givenName"},
        {"op": "remove", "path": "name.familyName"}
    ]));
    assert!(!doc.contains_key("name"));
}

#[test]
fn a_core_urn_qualified_path_names_the_core_attribute() {
    let doc = patched(json!([{
        "op": "replace",
        "path": "urn:ietf:params:scim:schemas:core:2.0:User:userName",
        "value": "barbara"
    }]));
    assert_eq!(doc["userName"], "barbara");
    let doc = patched(json!([{
        "op": "replace",
        "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName",
        "value": "J"
    }]));
    assert_eq!(doc["name"]["familyName"], "J");
}

#[test]
fn an_enterprise_urn_path_sets_the_extension_attribute_and_lists_the_extension() {
    let doc = patched(json!([{
        "op": "add",
        "path": format!("{ENT}:department"),
        "value": "Tour Operations"
    }]));
    assert_eq!(doc[ENT], json!({"department": "Tour Operations"}));
    assert_eq!(doc["schemas"], json!([USER_URN, ENT]));
}

#[test]
fn removing_the_last_enterprise_attribute_drops_the_extension_and_its_urn() {
    let with = patched(json!([{"op": "add", "path": format!("{ENT}:department"), "value": "R&D"}]));
    let doc = patch_user(
        &with,
        json!([{"op": "remove", "path": format!("{ENT}:department")}]),
    )
    .unwrap()
    .document;
    assert_eq!(doc, bjensen());
}

#[test]
fn entra_manager_as_a_bare_string_becomes_an_object_with_a_value() {
    let by_path =
        patched(json!([{"op": "Replace", "path": format!("{ENT}:manager"), "value": "123"}]));
    assert_eq!(by_path[ENT]["manager"], json!({"value": "123"}));
    let by_key = patched(json!([{"op": "Add", "value": {format!("{ENT}:manager"): "123"}}]));
    assert_eq!(by_key, by_path);
    let by_object = patched(json!([{"op": "add", "value": {ENT: {"manager": "123"}}}]));
    assert_eq!(by_object, by_path);
    let sub =
        patched(json!([{"op": "add", "path": format!("{ENT}:manager.value"), "value": "123"}]));
    assert_eq!(sub, by_path);
}

#[test]
fn a_whole_extension_path_merges_into_the_extension() {
    let with = patched(json!([{"op": "add", "path": format!("{ENT}:department"), "value": "R&D"}]));
    let doc = patch_user(
        &with,
        json!([{"op": "replace", "path": ENT, "value": {"costCenter": "42"}}]),
    )
    .unwrap()
    .document;
    assert_eq!(doc[ENT], json!({"department": "R&D", "costCenter": "42"}));
    let doc = patch_user(&with, json!([{"op": "remove", "path": ENT}]))
        .unwrap()
        .document;
    assert_eq!(doc, bjensen());
}

#[test]
fn replace_with_null_unassigns_the_attribute() {
    let doc = patched(json!([{"op": "replace", "path": "displayName", "value": null}]));
    assert!(!doc.contains_key("displayName"));
}

// --- path-less values ---------------------------------------------------------------------

#[test]
fn pathless_values_may_be_keyed_by_names_dotted_paths_urn_paths_and_extension_urns() {
    let doc = patched(json!([{
        "op": "replace",
        "value": {
            "DisplayName": "Babs J",
            "name.givenName": "Barb",
            "emails[type eq \"work\"].value": "bj@work.example",
            format!("{ENT}:employeeNumber"): "701984",
            ENT: {"department": "Tours"},
            "urn:ietf:params:scim:schemas:core:2.0:User:title": "Guide",
            "schemas": ["ignored"]
        }
    }]));
    assert_eq!(doc["displayName"], "Babs J");
    assert_eq!(
        doc["name"],
        json!({"givenName": "Barb", "familyName": "Jensen"})
    );
    assert_eq!(doc["emails"][0]["value"], "bj@work.example");
    assert_eq!(
        doc[ENT],
        json!({"employeeNumber": "701984", "department": "Tours"})
    );
    assert_eq!(doc["title"], "Guide");
    assert_eq!(doc["schemas"], json!([USER_URN, ENT]));
}

#[test]
fn pathless_replace_of_a_complex_attribute_merges_its_sub_attributes() {
    let doc = patched(
        json!([{"op": "replace", "value": {"name": {"givenName": "B", "familyName": null}}}]),
    );
    assert_eq!(doc["name"], json!({"givenName": "B"}));
}

#[test]
fn pathless_add_appends_to_a_multi_valued_attribute_and_replace_replaces_it() {
    let added = patched(
        json!([{"op": "add", "value": {"emails": [{"value": "b@other.example", "type": "other"}]}}]),
    );
    assert_eq!(added["emails"].as_array().unwrap().len(), 3);
    assert_eq!(added["emails"][2]["value"], "b@other.example");
    let replaced =
        patched(json!([{"op": "replace", "value": {"emails": [{"value": "b@other.example"}]}}]));
    assert_eq!(replaced["emails"], json!([{"value": "b@other.example"}]));
}

#[test]
fn adding_a_value_that_is_already_there_changes_nothing() {
    let doc = patched(json!([
        {"op": "add", "path": "emails", "value": [{"value": "b@home.example", "type": "home"}]},
        {"op": "replace", "path": "displayName", "value": "Babs"},
        {"op": "add", "value": {"active": "True", "userName": "bjensen"}}
    ]));
    assert_eq!(doc, bjensen());
}

#[test]
fn a_pathless_id_equal_to_the_resource_id_is_dropped_and_another_is_a_mutability_error() {
    let doc = patched(json!([{"op": "replace", "value": {"id": UID, "displayName": "New"}}]));
    assert_eq!(doc["displayName"], "New");
    assert!(!doc.contains_key("id"));
    let err = user_error(
        json!([{"op": "replace", "value": {"id": "someone-else", "displayName": "New"}}]),
    );
    assert_eq!(err, Some(ScimType::Mutability));
}

#[test]
fn pathless_readonly_attributes_are_ignored_like_in_a_put() {
    let doc = patched(json!([{"op": "replace", "value": {
        "meta": {"created": "2020-01-01T00:00:00Z"},
        "groups": [{"value": "g"}],
        "schemas": [USER_URN],
        "nickName": "B"
    }}]));
    assert_eq!(doc["nickName"], "B");
    for gone in ["meta", "groups"] {
        assert!(!doc.contains_key(gone));
    }
}

#[test]
fn password_is_accepted_and_discarded_wherever_it_appears() {
    let doc = patched(json!([
        {"op": "replace", "path": "password", "value": "hunter2"},
        {"op": "add", "value": {"password": "hunter3"}},
        {"op": "remove", "path": "password"}
    ]));
    assert_eq!(doc, bjensen());
}

// --- value filters ------------------------------------------------------------------------

#[test]
fn a_filter_with_a_sub_attribute_sets_it_on_the_matching_elements_only() {
    let doc = patched(
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@work.example"}]),
    );
    assert_eq!(
        doc["emails"],
        json!([
            {"value": "new@work.example", "type": "work", "primary": true},
            {"value": "b@home.example", "type": "home"}
        ])
    );
}

#[test]
fn a_filter_without_a_sub_attribute_merges_the_value_into_the_matching_elements() {
    let doc = patched(json!([{
        "op": "replace",
        "path": "emails[type eq \"work\"]",
        "value": {"value": "new@work.example", "display": "Work"}
    }]));
    assert_eq!(
        doc["emails"][0],
        json!({"value": "new@work.example", "type": "work", "primary": true, "display": "Work"})
    );
}

#[test]
fn a_filter_on_addresses_sets_the_street_of_the_work_address() {
    let user = stored_user(json!({
        "schemas": [USER_URN],
        "userName": "b",
        "addresses": [{"type": "work", "streetAddress": "1 Old Rd", "locality": "Hollywood"}]
    }));
    let doc = patch_user(
        &user,
        json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "911 Universal City Plaza"}]),
    )
    .unwrap()
    .document;
    assert_eq!(
        doc["addresses"],
        json!([{"type": "work", "streetAddress": "911 Universal City Plaza", "locality": "Hollywood"}])
    );
}

#[test]
fn add_or_replace_through_a_filter_that_matches_nothing_creates_the_element() {
    let user = stored_user(json!({"schemas": [USER_URN], "userName": "b"}));
    for op in ["replace", "Add"] {
        let doc = patch_user(
            &user,
            json!([{"op": op, "path": "emails[type eq \"work\"].value", "value": "x@work.example"}]),
        )
        .unwrap()
        .document;
        assert_eq!(
            doc["emails"],
            json!([{"type": "work", "value": "x@work.example"}])
        );
    }
    let doc = patch_user(
        &user,
        json!([{"op": "replace", "path": "addresses[type eq \"work\" and primary eq true]", "value": {"locality": "Paris"}}]),
    )
    .unwrap()
    .document;
    assert_eq!(
        doc["addresses"],
        json!([{"type": "work", "primary": true, "locality": "Paris"}])
    );
}

#[test]
fn a_filter_that_matches_nothing_and_describes_no_element_is_no_target() {
    for path in [
        "emails[value co \"nobody\"].display",
        "emails[type eq \"work\" or type eq \"other\"].display",
    ] {
        let user = stored_user(json!({"schemas": [USER_URN], "userName": "b"}));
        let (_, scim_type) = error_of(patch_user(
            &user,
            json!([{"op": "replace", "path": path, "value": "x"}]),
        ));
        assert_eq!(scim_type, Some(ScimType::NoTarget), "{path}");
    }
}

#[test]
fn remove_through_a_filter_removes_the_matching_elements_only() {
    let doc = patched(json!([{"op": "remove", "path": "emails[type eq \"WORK\"]"}]));
    assert_eq!(
        doc["emails"],
        json!([{"value": "b@home.example", "type": "home"}])
    );
    let doc = patched(json!([{"op": "remove", "path": "emails[value ew \"example\"]"}]));
    assert!(!doc.contains_key("emails"));
    let doc = patched(json!([{"op": "remove", "path": "emails[type eq \"pager\"]"}]));
    assert_eq!(doc, bjensen());
}

#[test]
fn remove_through_a_filter_with_a_sub_attribute_removes_that_sub_attribute() {
    let doc = patched(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]));
    assert_eq!(
        doc["emails"][0],
        json!({"value": "b@work.example", "type": "work"})
    );
}

#[test]
fn remove_with_a_value_list_removes_only_those_values() {
    let doc = patched(
        json!([{"op": "remove", "path": "emails", "value": [{"value": "b@home.example"}]}]),
    );
    assert_eq!(
        doc["emails"],
        json!([{"value": "b@work.example", "type": "work", "primary": true}])
    );
}

#[test]
fn setting_primary_on_one_element_takes_it_from_the_others() {
    let doc = patched(
        json!([{"op": "replace", "path": "emails[type eq \"home\"].primary", "value": "True"}]),
    );
    assert_eq!(doc["emails"][0]["primary"], false);
    assert_eq!(doc["emails"][1]["primary"], true);
    let doc = patched(
        json!([{"op": "add", "path": "emails", "value": {"value": "n@x.example", "primary": true}}]),
    );
    assert_eq!(doc["emails"][0]["primary"], false);
    assert_eq!(
        doc["emails"][2],
        json!({"value": "n@x.example", "primary": true})
    );
    let doc = patched(json!([{"op": "replace", "path": "emails", "value": [
        {"value": "a@x.example", "primary": true},
        {"value": "b@x.example", "primary": true}
    ]}]));
    assert_eq!(doc["emails"][0]["primary"], false);
    assert_eq!(doc["emails"][1]["primary"], true);
}

#[test]
fn entra_roles_with_string_booleans_are_added_typed() {
    let doc = patched(json!([{"op": "Add", "path": "roles", "value": [
        {"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}
    ]}]));
    assert_eq!(
        doc["roles"],
        json!([{"primary": true, "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}])
    );
}

// --- errors -------------------------------------------------------------------------------

#[test]
fn readonly_attributes_named_by_a_path_are_mutability_errors() {
    for path in [
        "id",
        "meta",
        "meta.created",
        "groups",
        "GROUPS[value eq \"g\"]",
        &format!("{ENT}:manager.displayName"),
    ] {
        let err = user_error(json!([{"op": "replace", "path": path, "value": "x"}]));
        assert_eq!(err, Some(ScimType::Mutability), "{path}");
    }
    let err = user_error(json!([{"op": "remove", "path": "id"}]));
    assert_eq!(err, Some(ScimType::Mutability));
}

#[test]
fn removing_a_required_attribute_is_invalid_value() {
    let err = user_error(json!([{"op": "remove", "path": "userName"}]));
    assert_eq!(err, Some(ScimType::InvalidValue));
    let err = user_error(json!([{"op": "replace", "path": "userName", "value": null}]));
    assert_eq!(err, Some(ScimType::InvalidValue));
    let doc = patched(json!([
        {"op": "remove", "path": "userName"},
        {"op": "add", "path": "userName", "value": "bj"}
    ]));
    assert_eq!(doc["userName"], "bj");
}

#[test]
fn a_value_of_the_wrong_type_for_a_registered_attribute_is_invalid_value() {
    for op in [
        json!({"op": "replace", "path": "active", "value": "yes"}),
        json!({"op": "replace", "path": "userName", "value": 5}),
        json!({"op": "replace", "path": "name", "value": "Barbara"}),
        json!({"op": "replace", "path": "displayName", "value": ["a", "b"]}),
        json!({"op": "add", "path": "emails[type eq \"work\"]", "value": "x"}),
        json!({"op": "add", "value": {ENT: "not an object"}}),
    ] {
        assert_eq!(
            user_error(json!([op])),
            Some(ScimType::InvalidValue),
            "{op}"
        );
    }
}

#[test]
fn sub_attributes_or_filters_on_attributes_that_have_none_are_invalid_path() {
    for path in [
        "displayName.first",
        "name[givenName eq \"B\"]",
        "name[givenName eq \"B\"].familyName",
    ] {
        assert_eq!(
            user_error(json!([{"op": "replace", "path": path, "value": "x"}])),
            Some(ScimType::InvalidPath),
            "{path}"
        );
    }
}

#[test]
fn a_failing_operation_applies_nothing_and_names_its_position() {
    let stored = bjensen();
    let err = patch_user(
        &stored,
        json!([
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": "meta.created", "value": "x"}
        ]),
    )
    .unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::Mutability));
    assert!(err.detail.starts_with("operation 2:"), "{}", err.detail);
    assert_eq!(stored, bjensen());
}

// --- unknown attributes (DESIGN 4) --------------------------------------------------------

#[test]
fn unknown_attributes_and_extensions_are_stored_as_sent() {
    let doc = patched(json!([
        {"op": "add", "path": "favouriteColour", "value": "teal"},
        {"op": "add", "path": "urn:example:custom:1.0:User:badge", "value": 7},
        {"op": "add", "value": {"urn:example:other:1.0:User": {"level": {"a": 1}}}}
    ]));
    assert_eq!(doc["favouriteColour"], "teal");
    assert_eq!(doc["urn:example:custom:1.0:User"], json!({"badge": 7}));
    assert_eq!(
        doc["urn:example:other:1.0:User"],
        json!({"level": {"a": 1}})
    );
    assert_eq!(
        doc["schemas"],
        json!([
            USER_URN,
            "urn:example:custom:1.0:User",
            "urn:example:other:1.0:User"
        ])
    );

    let doc = patch_user(
        &doc,
        json!([
            {"op": "replace", "path": "FavouriteColour", "value": "red"},
            {"op": "remove", "path": "urn:example:custom:1.0:User:badge"},
            {"op": "add", "path": "URN:EXAMPLE:OTHER:1.0:USER:level.b", "value": 2}
        ]),
    )
    .unwrap()
    .document;
    assert_eq!(doc["favouriteColour"], "red");
    assert!(!doc.contains_key("urn:example:custom:1.0:User"));
    assert_eq!(
        doc["urn:example:other:1.0:User"],
        json!({"level": {"a": 1, "b": 2}})
    );
    assert_eq!(
        doc["schemas"],
        json!([USER_URN, "urn:example:other:1.0:User"])
    );
}

#[test]
fn immutable_attributes_may_be_set_once_but_not_changed() {
    let core = Registry::core();
    let mut schemas = core.schemas.clone();
    for schema in &mut schemas {
        if schema.id == ENT {
            for attr in &mut schema.attributes {
                if attr.name == "employeeNumber" {
                    attr.mutability = Mutability::Immutable;
                }
            }
        }
    }
    let registry = Registry {
        common: core.common.clone(),
        schemas,
        resource_types: core.resource_types.clone(),
    };
    let run = |stored: &Map<String, Value>, ops: Value| {
        apply(
            &registry,
            registry.user(),
            stored,
            UID,
            &parse_patch(body(ops)).unwrap(),
        )
    };
    let path = format!("{ENT}:employeeNumber");
    let set = run(
        &bjensen(),
        json!([{"op": "add", "path": path, "value": "1"}]),
    )
    .unwrap()
    .document;
    assert_eq!(set[ENT]["employeeNumber"], "1");
    let same = run(&set, json!([{"op": "replace", "path": path, "value": "1"}])).unwrap();
    assert_eq!(same.document, set);
    for op in [
        json!({"op": "replace", "path": path, "value": "2"}),
        json!({"op": "remove", "path": path}),
        json!({"op": "replace", "value": {ENT: {"employeeNumber": "3"}}}),
    ] {
        let err = run(&set, json!([op])).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::Mutability), "{op}");
    }
}

// --- groups and members -------------------------------------------------------------------

#[test]
fn okta_renames_a_group_with_its_own_id_in_the_value() {
    let out =
        patch_group(json!([{"op": "replace", "value": {"id": GID, "displayName": "Operators"}}]))
            .unwrap();
    assert_eq!(out.document["displayName"], "Operators");
    assert!(out.members.is_empty());
}

#[test]
fn adding_members_returns_them_without_touching_the_document() {
    let out = patch_group(json!([
        {"op": "Add", "path": "members", "value": [
            {"value": "u1", "$ref": null},
            {"value": "g2", "type": "group", "display": "Nested"}
        ]},
        {"op": "add", "value": {"members": [{"value": "u3"}]}}
    ]))
    .unwrap();
    assert_eq!(out.document, stored_group());
    assert_eq!(
        out.members,
        MembersPatch {
            clear: false,
            remove: vec![],
            add: vec![
                member("u1"),
                MemberRef {
                    value: "g2".to_owned(),
                    member_type: Some("Group".to_owned())
                },
                member("u3"),
            ],
        }
    );
}

#[test]
fn entra_remove_members_with_a_value_list_removes_only_those_members() {
    let out = patch_group(
        json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}]),
    )
    .unwrap();
    assert_eq!(out.members.remove, ["u1", "u2"]);
    assert!(!out.members.clear);
}

#[test]
fn remove_members_through_a_value_filter_removes_that_member() {
    let out = patch_group(json!([{"op": "remove", "path": "members[value eq \"u1\"]"}])).unwrap();
    assert_eq!(out.members.remove, ["u1"]);
    let out = patch_group(
        json!([{"op": "remove", "path": "members[value eq \"u1\" or value eq \"u2\"]"}]),
    )
    .unwrap();
    assert_eq!(out.members.remove, ["u1", "u2"]);
    let err =
        patch_group(json!([{"op": "remove", "path": "members[type eq \"Group\"]"}])).unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
}

#[test]
fn remove_members_without_a_value_removes_them_all_and_replace_sets_the_list() {
    let out = patch_group(json!([{"op": "remove", "path": "members"}])).unwrap();
    assert_eq!(
        out.members,
        MembersPatch {
            clear: true,
            remove: vec![],
            add: vec![]
        }
    );
    let out = patch_group(
        json!([{"op": "replace", "path": "members", "value": [{"value": "u1"}, {"value": "u1"}]}]),
    )
    .unwrap();
    assert_eq!(
        out.members,
        MembersPatch {
            clear: true,
            remove: vec![],
            add: vec![member("u1")]
        }
    );
}

#[test]
fn member_operations_fold_in_order() {
    let out = patch_group(json!([
        {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
        {"op": "remove", "path": "members[value eq \"a\"]"},
        {"op": "remove", "path": "members[value eq \"c\"]"},
        {"op": "add", "path": "members", "value": [{"value": "c"}]}
    ]))
    .unwrap();
    assert_eq!(
        out.members,
        MembersPatch {
            clear: false,
            remove: vec!["a".to_owned()],
            add: vec![member("b"), member("c")]
        }
    );
}

#[test]
fn member_values_must_be_ids_and_types_user_or_group() {
    for value in [
        json!([{"value": 5}]),
        json!([{"type": "User"}]),
        json!([{"value": "u1", "type": "Robot"}]),
        json!([{"value": ""}]),
    ] {
        let err =
            patch_group(json!([{"op": "add", "path": "members", "value": value}])).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{value}");
    }
}

#[test]
fn a_member_display_change_is_ignored_and_a_member_id_change_is_a_mutability_error() {
    let out = patch_group(
        json!([{"op": "replace", "path": "members[value eq \"u1\"].display", "value": "U"}]),
    )
    .unwrap();
    assert!(out.members.is_empty());
    let err = patch_group(
        json!([{"op": "replace", "path": "members[value eq \"u1\"].value", "value": "u2"}]),
    )
    .unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::Mutability));
}

#[test]
fn removing_a_group_display_name_is_invalid_value() {
    let err = patch_group(json!([{"op": "remove", "path": "displayName"}])).unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
}

#[test]
fn a_group_can_be_renamed_and_given_members_in_one_pathless_value() {
    let out = patch_group(json!([{"op": "add", "value": {
        "displayName": "Ops",
        "members": [{"value": "u1", "$ref": null, "type": "User"}]
    }}]))
    .unwrap();
    assert_eq!(out.document["displayName"], "Ops");
    assert!(!out.document.contains_key("members"));
    assert_eq!(
        out.members.add,
        [MemberRef {
            value: "u1".to_owned(),
            member_type: Some("User".to_owned())
        }]
    );
}

#[test]
fn a_ten_thousand_member_replace_is_one_operation() {
    let value: Vec<Value> = (0..10_000)
        .map(|i| json!({"value": format!("u{i}")}))
        .collect();
    let out = patch_group(json!([
        {"op": "replace", "path": "members", "value": value},
        {"op": "remove", "path": "members", "value": [{"value": "u5"}]}
    ]))
    .unwrap();
    assert!(out.members.clear);
    assert_eq!(out.members.add.len(), 9_999);
}

#[test]
fn schemas_named_by_a_path_or_a_key_is_ignored_because_it_follows_the_content() {
    let doc = patched(json!([
        {"op": "replace", "path": "schemas", "value": ["urn:example:nothing"]},
        {"op": "add", "value": {"schemas": [ENT]}}
    ]));
    assert_eq!(doc, bjensen());
}

#[test]
fn value_filters_compare_by_the_sub_attribute_type() {
    use scim_v2::filter::PatchPath;
    let emails = Registry::core()
        .schema(USER_URN)
        .unwrap()
        .attribute("emails")
        .unwrap();
    let element = json!({"value": "Bjensen@Example.com", "type": "work", "primary": true});
    let matches = |filter: &str| {
        let path: PatchPath = format!("emails[{filter}]").parse().unwrap();
        let PatchPath::Value(vp) = path else {
            panic!("{filter} is not a value path")
        };
        value_filter::matches(&vp.filter, &element, Some(emails))
    };
    for yes in [
        r#"value eq "bjensen@example.com""#,
        r#"value sw "BJ" and value ew ".COM""#,
        r#"value co "@example""#,
        r#"type ne "home""#,
        "primary eq true",
        r#"primary eq "True""#,
        "display eq null",
        "type pr",
        r#"not (type eq "home")"#,
        r#"type eq "home" or type gt "a""#,
    ] {
        assert!(matches(yes), "{yes}");
    }
    for no in [
        "display pr",
        "primary eq false",
        r#"type lt "a""#,
        r#"value eq "other@example.com""#,
        "value eq 5",
    ] {
        assert!(!matches(no), "{no}");
    }
}
