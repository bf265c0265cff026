//! Microsoft Entra ID's request shapes: without aadOptscim062020, creating and looking up,
//! and with aadOptscim062020.

use serde_json::Value;

use super::ENTERPRISE_URN;
use super::{Replay, manager_of};

// ------------------------------------------------------------ Entra, without aadOptscim062020

#[tokio::test]
async fn entra_without_the_feature_flag_disables_a_user_with_a_string_false() {
    let run = Replay::run("entra-without-flag-disable-user.json").await;
    // The last step sent "True": the user is active again, and a boolean.
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(true), "{user}");
}

#[tokio::test]
async fn entra_without_the_feature_flag_replaces_attributes_one_capitalised_operation_each() {
    let run = Replay::run("entra-without-flag-replace-attributes.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["displayName"], "Pvlo", "{user}");
    assert_eq!(user["name"]["givenName"], "Gtfd", "{user}");
    assert_eq!(user["name"]["familyName"], "updatedFamilyName", "{user}");
    assert_eq!(user["externalId"], "Eqpj", "{user}");
    assert_eq!(user[ENTERPRISE_URN]["employeeNumber"], "Eqpj", "{user}");
    assert_eq!(user["userName"], run.var("newUserName"), "{user}");
    let emails = user["emails"].as_array().cloned().unwrap_or_default();
    assert_eq!(emails.len(), 1, "one work email, replaced in place: {user}");
    assert_eq!(emails[0]["value"], "updatedEmail@microsoft.com", "{user}");
}

#[tokio::test]
async fn entra_without_the_feature_flag_adds_a_single_value_with_a_capitalised_add() {
    let run = Replay::run("entra-without-flag-add-single-value.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["nickName"], "Babs", "{user}");
    assert_eq!(user[ENTERPRISE_URN]["employeeNumber"], "6546579", "{user}");
}

#[tokio::test]
async fn entra_without_the_feature_flag_sets_the_manager_from_a_bare_string_id() {
    let run = Replay::run("entra-without-flag-manager.json").await;
    let user = run.user("userId").await;
    let manager = manager_of(&user);
    assert_eq!(
        manager["value"],
        run.var("managerId"),
        "manager is {{\"value\": id}}: {user}"
    );
    assert!(
        manager.is_object(),
        "manager must be stored as a complex value: {user}"
    );
    assert_eq!(
        user["meta"]["version"],
        run.var("v1"),
        "re-sending the same manager must not bump the version: {user}"
    );
}

#[tokio::test]
async fn entra_without_the_feature_flag_creates_the_work_address_a_value_filter_matches_nowhere() {
    let run = Replay::run("entra-without-flag-filter-matching-nothing.json").await;
    let user = run.user("userId").await;
    let addresses = user["addresses"].as_array().cloned().unwrap_or_default();
    assert_eq!(addresses.len(), 1, "one work address, not two: {user}");
    assert_eq!(addresses[0]["type"], "work", "{user}");
    assert_eq!(addresses[0]["formatted"], "18/2111", "{user}");
    assert_eq!(user[ENTERPRISE_URN]["department"], "Retail", "{user}");
}

#[tokio::test]
async fn entra_without_the_feature_flag_removes_only_the_members_named_in_a_value_array() {
    let run = Replay::run("entra-without-flag-group-membership.json").await;
    assert_eq!(
        run.member_ids("groupId").await,
        run.ids(&["userId3"]),
        "users 1 and 2 removed, user 3 kept"
    );
}

#[tokio::test]
async fn entra_without_the_feature_flag_renames_a_group_and_a_repeated_rename_changes_nothing() {
    let run = Replay::run("entra-without-flag-group-rename.json").await;
    let group = run.group("groupId").await;
    assert_eq!(group["displayName"], run.var("newGroupName"), "{group}");
    assert_eq!(group["meta"]["version"], run.var("etag"), "{group}");
}

// ------------------------------------------------------------ Entra, create and look up

#[tokio::test]
async fn entra_creates_a_user_with_the_enterprise_extension_and_finds_it_by_user_name() {
    let run = Replay::run("entra-create-user-with-enterprise-extension.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(true), "{user}");
    assert_eq!(user["externalId"], run.var("externalId"), "{user}");
    assert_eq!(
        user[ENTERPRISE_URN]["department"], "Tour Operations",
        "{user}"
    );
    let phones = user["phoneNumbers"].as_array().cloned().unwrap_or_default();
    assert_eq!(phones.len(), 3, "work, mobile and fax: {user}");
}

#[tokio::test]
async fn entra_creates_a_user_whose_unmapped_attributes_are_sent_as_null() {
    let run = Replay::run("entra-create-user-with-null-attributes.json").await;
    let user = run.user("userId").await;
    for unassigned in [
        "addresses",
        "phoneNumbers",
        "title",
        "department",
        "manager",
    ] {
        assert!(
            user.get(unassigned).is_none_or(Value::is_null),
            "`{unassigned}` was sent as null and must stay unassigned: {user}"
        );
    }
    assert_eq!(user["displayName"], "Joy Young", "{user}");
}

#[tokio::test]
async fn entra_creates_a_group_and_finds_it_by_display_name_without_its_members() {
    let run = Replay::run("entra-create-group-and-look-it-up.json").await;
    let group = run.group("groupId").await;
    assert_eq!(group["displayName"], run.var("groupName"), "{group}");
    assert_eq!(group["externalId"], run.var("groupExternalId"), "{group}");
}

#[tokio::test]
async fn entra_finds_a_user_by_user_name_and_by_external_id() {
    let run = Replay::run("entra-look-up-users-by-matching-attributes.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["externalId"], run.var("externalId"), "{user}");
}

#[tokio::test]
async fn entra_finds_a_user_by_a_work_email_filter() {
    let run = Replay::run("entra-look-up-user-by-work-email.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["emails"][0]["value"], run.var("mail"), "{user}");
}

// ------------------------------------------------------------ Entra, with aadOptscim062020

#[tokio::test]
async fn entra_with_the_feature_flag_disables_a_user_with_a_boolean_false() {
    let run = Replay::run("entra-with-flag-disable-user.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(false), "{user}");
    assert_eq!(
        user["meta"]["version"],
        run.var("v1"),
        "disabling twice bumps once"
    );
}

#[tokio::test]
async fn entra_with_the_feature_flag_replaces_attributes_with_a_pathless_value_keyed_by_paths() {
    let run = Replay::run("entra-with-flag-replace-attributes.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["name"]["givenName"], "Foo", "{user}");
    assert_eq!(user["name"]["familyName"], "Bar", "{user}");
    assert_eq!(user[ENTERPRISE_URN]["employeeNumber"], "Aklq", "{user}");
    let stray: Vec<&String> = user
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| {
                    let urn = k.starts_with("urn:");
                    (!urn && k.contains('.'))
                        || (urn && k.as_str() != ENTERPRISE_URN && k.contains("User:"))
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        stray.is_empty(),
        "paths stored as attribute names: {stray:?} in {user}"
    );
}

#[tokio::test]
async fn entra_with_the_feature_flag_adds_single_values_including_a_bare_string_manager() {
    let run = Replay::run("entra-with-flag-add-single-value.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["nickName"], "Babs", "{user}");
    assert_eq!(manager_of(&user)["value"], run.var("userId2"), "{user}");
}

#[tokio::test]
async fn entra_with_the_feature_flag_removes_one_member_by_a_value_filter_path() {
    let run = Replay::run("entra-with-flag-remove-member.json").await;
    assert_eq!(run.member_ids("groupId").await, run.ids(&["userId2"]));
}
