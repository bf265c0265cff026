//! Round trips of the RFC 7643 users: what is written reads back, a second PUT changes
//! nothing, a DELETE gives 204 then 404 with a SCIM error, Location equals meta.location.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, LOCATION};
use serde_json::{Map, Value, json};

use super::users::{
    client_writable, rfc7643_enterprise_user, rfc7643_full_user, rfc7643_minimal_user,
    unique_user_name,
};
use super::{ERROR_URN, LIST_URN, Reply, SCIM_JSON, target};

/// Asserts that `got` carries every client-writable attribute of `sent`, and nothing else.
fn assert_same_attributes(sent: &Value, got: &Value, what: &str) {
    let (expected, actual) = (client_writable(sent), client_writable(got));
    if expected == actual {
        return;
    }
    let empty = Map::new();
    let (e, a) = (
        expected.as_object().unwrap_or(&empty),
        actual.as_object().unwrap_or(&empty),
    );
    let missing: Vec<&String> = e.keys().filter(|k| !a.contains_key(*k)).collect();
    let extra: Vec<&String> = a.keys().filter(|k| !e.contains_key(*k)).collect();
    let differing: Vec<&String> = e
        .keys()
        .filter(|k| a.get(*k).is_some_and(|v| v != &e[*k]))
        .collect();
    panic!(
        "{what}: the client-writable attributes differ from those sent\n\
         missing: {missing:?}\nunexpected: {extra:?}\ndifferent: {differing:?}\n\
         sent: {}\ngot: {}",
        serde_json::to_string_pretty(&expected).unwrap_or_default(),
        serde_json::to_string_pretty(&actual).unwrap_or_default(),
    );
}

fn assert_scim_content_type(reply: &Reply, what: &str) {
    let content_type = reply.header(CONTENT_TYPE).unwrap_or_default();
    assert!(
        content_type.starts_with(SCIM_JSON),
        "{what}: Content-Type is `{content_type}`, not {SCIM_JSON} (RFC 7644 §3.1)"
    );
}

/// Checks what every single-resource answer must carry: the SCIM media type,
/// `meta.resourceType` "User", the password left out and `ETag` equal to `meta.version`.
fn assert_user_resource(reply: &Reply, id: &str, what: &str) {
    let body = &reply.body;
    assert_scim_content_type(reply, what);
    assert_eq!(body["id"], id, "{what}: id");
    assert_eq!(
        body["meta"]["resourceType"], "User",
        "{what}: meta.resourceType"
    );
    assert!(
        body.get("password").is_none(),
        "{what}: password is returned (RFC 7643 §4.1.1: returned never)"
    );
    let version = body["meta"]["version"].as_str();
    assert!(version.is_some(), "{what}: no meta.version in {body}");
    assert_eq!(
        reply.header(ETAG),
        version,
        "{what}: ETag header and meta.version"
    );
    let location = body["meta"]["location"].as_str().unwrap_or_default();
    assert!(
        location.ends_with(&format!("/Users/{id}")),
        "{what}: meta.location `{location}` is not the user's URL"
    );
}

/// RFC 7644 §3.3: the 201 carries the resource's URI in `Location` and `meta.location`.
fn assert_created(reply: &Reply, id: &str, sent: &Value) {
    assert_user_resource(reply, id, "POST /Users");
    assert_eq!(
        reply.header(LOCATION),
        reply.body["meta"]["location"].as_str(),
        "POST /Users: Location header and meta.location"
    );
    assert_same_attributes(sent, &reply.body, "POST /Users");
}

/// POST, GET and a `userName eq` list all return every client-writable attribute as sent.
async fn round_trip(example: fn(&str) -> Value, local_part: &str) {
    let server = target().await;
    let user_name = unique_user_name(local_part);
    let sent = example(&user_name);

    let (id, created) = server.create(&sent).await;
    assert_created(&created, &id, &sent);

    let fetched = server.get_user(&id).await;
    assert_eq!(fetched.status, StatusCode::OK, "GET: {}", fetched.body);
    assert_user_resource(&fetched, &id, "GET /Users/{id}");
    assert_same_attributes(&sent, &fetched.body, "GET /Users/{id}");
    assert_eq!(fetched.body["meta"], created.body["meta"], "GET: meta");

    let listed = server.find_by_user_name(&user_name).await;
    assert_eq!(listed.status, StatusCode::OK, "list: {}", listed.body);
    assert_scim_content_type(&listed, "GET /Users?filter");
    assert_eq!(listed.body["schemas"], json!([LIST_URN]), "list: schemas");
    assert_eq!(listed.body["totalResults"], 1, "list: {}", listed.body);
    let resources = listed.body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(resources.len(), 1, "list: Resources in {}", listed.body);
    let found = &resources[0];
    assert_eq!(found["id"], id.as_str(), "list: id");
    assert_eq!(found["meta"], created.body["meta"], "list: meta");
    assert!(
        found.get("password").is_none(),
        "list: password is returned"
    );
    assert_same_attributes(&sent, found, "GET /Users?filter=userName eq");
}

/// A PUT of the body already stored is not a change: same version, same `lastModified`.
async fn put_again(example: fn(&str) -> Value, local_part: &str) {
    let server = target().await;
    let sent = example(&unique_user_name(local_part));
    let (id, created) = server.create(&sent).await;

    let replaced = server.put_user(&id, &sent).await;
    assert_eq!(replaced.status, StatusCode::OK, "PUT: {}", replaced.body);
    assert_user_resource(&replaced, &id, "PUT /Users/{id}");
    assert_same_attributes(&sent, &replaced.body, "PUT /Users/{id}");
    assert_eq!(
        replaced.body["meta"], created.body["meta"],
        "PUT of the same body changed meta (version or lastModified)"
    );

    let fetched = server.get_user(&id).await;
    assert_eq!(fetched.status, StatusCode::OK, "GET: {}", fetched.body);
    assert_eq!(
        fetched.body["meta"]["version"], created.body["meta"]["version"],
        "GET after the PUT: meta.version"
    );
    assert_eq!(
        fetched.header(ETAG),
        created.header(ETAG),
        "GET after the PUT: ETag"
    );
}

/// DELETE answers 204; the user is then gone with a SCIM error (RFC 7644 §3.6, §3.12).
async fn delete_then_not_found(example: fn(&str) -> Value, local_part: &str) {
    let server = target().await;
    let sent = example(&unique_user_name(local_part));
    let (id, _) = server.create(&sent).await;

    let deleted = server.delete_user(&id).await;
    assert_eq!(
        deleted.status,
        StatusCode::NO_CONTENT,
        "DELETE: {}",
        deleted.body
    );

    let gone = server.get_user(&id).await;
    assert_eq!(
        gone.status,
        StatusCode::NOT_FOUND,
        "GET after DELETE: {}",
        gone.body
    );
    assert_scim_content_type(&gone, "GET after DELETE");
    let schemas = gone.body["schemas"].as_array().cloned().unwrap_or_default();
    assert!(
        schemas.contains(&json!(ERROR_URN)),
        "404 body without the Error schema: {}",
        gone.body
    );
    assert_eq!(gone.body["status"], "404", "404 body: status is a string");
}

#[tokio::test]
async fn rfc7643_minimal_user_round_trips_every_client_writable_attribute() {
    round_trip(rfc7643_minimal_user, "minimal").await;
}

#[tokio::test]
async fn rfc7643_full_user_round_trips_every_client_writable_attribute() {
    round_trip(rfc7643_full_user, "full").await;
}

#[tokio::test]
async fn rfc7643_enterprise_user_round_trips_every_client_writable_attribute() {
    round_trip(rfc7643_enterprise_user, "enterprise").await;
}

#[tokio::test]
async fn putting_the_rfc7643_minimal_user_again_changes_nothing() {
    put_again(rfc7643_minimal_user, "minimal").await;
}

#[tokio::test]
async fn putting_the_rfc7643_full_user_again_changes_nothing() {
    put_again(rfc7643_full_user, "full").await;
}

#[tokio::test]
async fn putting_the_rfc7643_enterprise_user_again_changes_nothing() {
    put_again(rfc7643_enterprise_user, "enterprise").await;
}

#[tokio::test]
async fn deleting_the_rfc7643_minimal_user_gives_204_then_404_with_a_scim_error() {
    delete_then_not_found(rfc7643_minimal_user, "minimal").await;
}

#[tokio::test]
async fn deleting_the_rfc7643_full_user_gives_204_then_404_with_a_scim_error() {
    delete_then_not_found(rfc7643_full_user, "full").await;
}

#[tokio::test]
async fn deleting_the_rfc7643_enterprise_user_gives_204_then_404_with_a_scim_error() {
    delete_then_not_found(rfc7643_enterprise_user, "enterprise").await;
}

/// RFC 7644 §3.4.1 and §3.5.1 show `Location` on the 200 of a GET and of a PUT, as on the
/// 201 of a POST (§3.3), equal to `meta.location`.
#[tokio::test]
async fn get_and_put_answer_with_a_location_header_equal_to_meta_location() {
    let server = target().await;
    let sent = rfc7643_minimal_user(&unique_user_name("location"));
    let (id, _) = server.create(&sent).await;

    let fetched = server.get_user(&id).await;
    assert_eq!(fetched.status, StatusCode::OK, "GET: {}", fetched.body);
    assert_eq!(
        fetched.header(LOCATION),
        fetched.body["meta"]["location"].as_str(),
        "GET /Users/{{id}}: Location header and meta.location"
    );

    let replaced = server.put_user(&id, &sent).await;
    assert_eq!(replaced.status, StatusCode::OK, "PUT: {}", replaced.body);
    assert_eq!(
        replaced.header(LOCATION),
        replaced.body["meta"]["location"].as_str(),
        "PUT /Users/{{id}}: Location header and meta.location"
    );
}
