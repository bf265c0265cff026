//! Okta's request shapes: OIN app integrations (PATCH) and AIW app integrations (PUT).

use serde_json::Value;

use super::Replay;

// ------------------------------------------------------------ Okta, OIN app integrations

#[tokio::test]
async fn okta_oin_app_creates_a_user_with_a_password_and_empty_groups() {
    let run = Replay::run("okta-oin-create-user.json").await;
    let user = run.user("userId").await;
    assert!(user.get("password").is_none(), "password returned: {user}");
    assert_eq!(user["userName"], run.var("userName"), "{user}");
}

#[tokio::test]
async fn okta_oin_app_deactivates_a_user_with_a_pathless_replace() {
    let run = Replay::run("okta-oin-deactivate-user.json").await;
    // The last step reactivated the user.
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(true), "{user}");
}

#[tokio::test]
async fn okta_oin_app_batches_member_removals_and_additions_in_one_patch() {
    let run = Replay::run("okta-oin-group-membership.json").await;
    assert_eq!(
        run.member_ids("groupId").await,
        run.ids(&["userId", "userId3"])
    );
    let group = run.group("groupId").await;
    assert_eq!(
        group["meta"]["version"],
        run.var("etag"),
        "the name re-sent after the membership change must not bump the version"
    );
}

#[tokio::test]
async fn okta_oin_app_renames_a_group_with_its_own_id_in_the_value() {
    let run = Replay::run("okta-oin-group-rename.json").await;
    let group = run.group("groupId").await;
    assert_eq!(group["id"], run.var("groupId"), "{group}");
    assert_eq!(group["displayName"], run.var("newGroupName"), "{group}");
    assert_eq!(group["meta"]["version"], run.var("etag"), "{group}");
}

// ------------------------------------------------------------ Okta, AIW app integrations

#[tokio::test]
async fn okta_aiw_app_updates_a_user_with_a_put_of_the_whole_user() {
    let run = Replay::run("okta-aiw-update-user-with-put.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["name"]["middleName"], "Excited", "{user}");
    assert_eq!(user["meta"]["version"], run.var("v1"), "{user}");
}

#[tokio::test]
async fn okta_aiw_app_deactivates_a_user_with_a_put_of_active_false() {
    let run = Replay::run("okta-aiw-deactivate-user-with-put.json").await;
    let user = run.user("userId").await;
    assert_eq!(user["active"], Value::Bool(false), "{user}");
    assert_eq!(user["meta"]["version"], run.var("v1"), "{user}");
}

#[tokio::test]
async fn okta_aiw_app_replaces_group_members_with_a_put_of_the_full_list() {
    let run = Replay::run("okta-aiw-group-put.json").await;
    assert_eq!(run.member_ids("groupId").await, run.ids(&["userId2"]));
    let group = run.group("groupId").await;
    assert_eq!(group["displayName"], run.var("newGroupName"), "{group}");
}
