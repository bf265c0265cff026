//! Black-box conformance: these tests speak only HTTP to a tenant's SCIM base URL with a
//! bearer token. With `SCIMBUS_CONFORMANCE_URL` (e.g. `https://host/scim/v2/acme`) and
//! `SCIMBUS_CONFORMANCE_TOKEN` set they run against that server; otherwise each test starts
//! its own in-process server on a fresh SQLite database. userNames are unique per test, so
//! the tests share an external tenant safely.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dialects;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, HeaderMap, LOCATION};
use scimbus::service::audit::Actor;
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use scimbus::config::Settings;
use scimbus::domain::Scope;
use scimbus::service::tenants::{TokenRequest, create_tenant, issue_token};
use scimbus::startup::Application;

const URL_VAR: &str = "SCIMBUS_CONFORMANCE_URL";
const TOKEN_VAR: &str = "SCIMBUS_CONFORMANCE_TOKEN";
const SCIM_JSON: &str = "application/scim+json";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The server under test: a SCIM base URL and a token for it.
struct Target {
    base: String,
    token: String,
    client: reqwest::Client,
    /// Keeps the in-process server's database directory alive for the test.
    _data: Option<tempfile::TempDir>,
}

async fn target() -> Target {
    let client = {
        scimbus::telemetry::install_tls_provider();
        reqwest::Client::new()
    };
    if let (Ok(base), Ok(token)) = (std::env::var(URL_VAR), std::env::var(TOKEN_VAR)) {
        return Target {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client,
            _data: None,
        };
    }
    let data = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/c.db?mode=rwc", data.path().display());
    let settings = Settings::from_lookup(|name| match name {
        "SCIMBUS_DATABASE_URL" => Some(database_url.clone()),
        "SCIMBUS_LISTEN" => Some("127.0.0.1:0".to_owned()),
        _ => None,
    })
    .unwrap();
    let app = Application::build(settings).await.unwrap();
    let slug = "conformance";
    create_tenant(app.context(), &Actor::system(), slug)
        .await
        .unwrap();
    let (_, secret) = issue_token(
        app.context(),
        &Actor::system(),
        slug,
        TokenRequest {
            name: "conformance".to_owned(),
            scopes: vec![Scope::Scim],
            expires_at: None,
        },
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{}/scim/v2/{slug}", app.port());
    tokio::spawn(app.run_until_stopped());
    Target {
        base,
        token: secret.expose_secret().to_owned(),
        client,
        _data: Some(data),
    }
}

/// A response read whole: status, headers and the JSON body (`Null` when empty).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: impl reqwest::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Target {
    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.bearer_auth(&self.token).send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{status}: body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    fn user_url(&self, id: &str) -> String {
        format!("{}/Users/{id}", self.base)
    }

    async fn post_user(&self, body: &Value) -> Reply {
        let request = self
            .client
            .post(format!("{}/Users", self.base))
            .header(CONTENT_TYPE, SCIM_JSON)
            .body(body.to_string());
        self.send(request).await
    }

    async fn get_user(&self, id: &str) -> Reply {
        self.send(self.client.get(self.user_url(id))).await
    }

    async fn put_user(&self, id: &str, body: &Value) -> Reply {
        let request = self
            .client
            .put(self.user_url(id))
            .header(CONTENT_TYPE, SCIM_JSON)
            .body(body.to_string());
        self.send(request).await
    }

    async fn delete_user(&self, id: &str) -> Reply {
        self.send(self.client.delete(self.user_url(id))).await
    }

    async fn find_by_user_name(&self, user_name: &str) -> Reply {
        let filter = format!("userName eq \"{user_name}\"");
        let request = self
            .client
            .get(format!("{}/Users", self.base))
            .query(&[("filter", filter.as_str())]);
        self.send(request).await
    }

    /// POSTs `body`, checks the 201 and returns the id.
    async fn create(&self, body: &Value) -> (String, Reply) {
        let created = self.post_user(body).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "POST /Users: {}",
            created.body
        );
        let id = created.body["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| panic!("POST /Users answered without an id: {}", created.body))
            .to_owned();
        (id, created)
    }
}

/// A userName no other test run uses, built from the RFC's example name.
fn unique_user_name(local_part: &str) -> String {
    format!("{local_part}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// RFC 7643 §8.1, Figure 3, with a unique userName.
fn rfc7643_minimal_user(user_name: &str) -> Value {
    json!({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
      "id": "2819c223-7f76-453a-919d-413861904646",
      "userName": user_name,
      "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": "W/\"3694e05e9dff590\"",
        "location":
         "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
      }
    })
}

/// The certificate of RFC 7643 §8.2 and §8.3, joined: the RFC wraps it over lines.
const RFC7643_CERTIFICATE: &str = concat!(
    "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx",
    "EzARBgNVBAgMCkNhbGlmb3JuaWExFDASBgNVBAoMC2V4YW1wbGUuY29tMRQwEgYD",
    "VQQDDAtleGFtcGxlLmNvbTAeFw0xMTEwMjIwNjI0MzFaFw0xMjEwMDQwNjI0MzFa",
    "MH8xCzAJBgNVBAYTAlVTMRMwEQYDVQQIDApDYWxpZm9ybmlhMRQwEgYDVQQKDAtl",
    "eGFtcGxlLmNvbTEhMB8GA1UEAwwYTXMuIEJhcmJhcmEgSiBKZW5zZW4gSUlJMSIw",
    "IAYJKoZIhvcNAQkBFhNiamVuc2VuQGV4YW1wbGUuY29tMIIBIjANBgkqhkiG9w0B",
    "AQEFAAOCAQ8AMIIBCgKCAQEA7Kr+Dcds/JQ5GwejJFcBIP682X3xpjis56AK02bc",
    "1FLgzdLI8auoR+cC9/Vrh5t66HkQIOdA4unHh0AaZ4xL5PhVbXIPMB5vAPKpzz5i",
    "PSi8xO8SL7I7SDhcBVJhqVqr3HgllEG6UClDdHO7nkLuwXq8HcISKkbT5WFTVfFZ",
    "zidPl8HZ7DhXkZIRtJwBweq4bvm3hM1Os7UQH05ZS6cVDgweKNwdLLrT51ikSQG3",
    "DYrl+ft781UQRIqxgwqCfXEuDiinPh0kkvIi5jivVu1Z9QiwlYEdRbLJ4zJQBmDr",
    "SGTMYn4lRc2HgHO4DqB/bnMVorHB0CC6AV1QoFK4GPe1LwIDAQABo3sweTAJBgNV",
    "HRMEAjAAMCwGCWCGSAGG+EIBDQQfFh1PcGVuU1NMIEdlbmVyYXRlZCBDZXJ0aWZp",
    "Y2F0ZTAdBgNVHQ4EFgQU8pD0U0vsZIsaA16lL8En8bx0F/gwHwYDVR0jBBgwFoAU",
    "dGeKitcaF7gnzsNwDx708kqaVt0wDQYJKoZIhvcNAQEFBQADgYEAA81SsFnOdYJt",
    "Ng5Tcq+/ByEDrBgnusx0jloUhByPMEVkoMZ3J7j1ZgI8rAbOkNngX8+pKfTiDz1R",
    "C4+dx8oU6Za+4NJXUjlL5CvV6BEYb1+QAEJwitTVvxB/A67g42/vzgAtoRUeDov1",
    "+GFiBZ+GNF/cAYKcMtGcrs2i97ZkJMo=",
);

/// RFC 7643 §8.2, Figure 4, with a unique userName.
fn rfc7643_full_user(user_name: &str) -> Value {
    json!({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
      "id": "2819c223-7f76-453a-919d-413861904646",
      "externalId": "701984",
      "userName": user_name,
      "name": {
        "formatted": "Ms. Barbara J Jensen, III",
        "familyName": "Jensen",
        "givenName": "Barbara",
        "middleName": "Jane",
        "honorificPrefix": "Ms.",
        "honorificSuffix": "III"
      },
      "displayName": "Babs Jensen",
      "nickName": "Babs",
      "profileUrl": "https://login.example.com/bjensen",
      "emails": [
        {
          "value": "bjensen@example.com",
          "type": "work",
          "primary": true
        },
        {
          "value": "babs@jensen.org",
          "type": "home"
        }
      ],
      "addresses": [
        {
          "type": "work",
          "streetAddress": "100 Universal City Plaza",
          "locality": "Hollywood",
          "region": "CA",
          "postalCode": "91608",
          "country": "USA",
          "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
          "primary": true
        },
        {
          "type": "home",
          "streetAddress": "456 Hollywood Blvd",
          "locality": "Hollywood",
          "region": "CA",
          "postalCode": "91608",
          "country": "USA",
          "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA"
        }
      ],
      "phoneNumbers": [
        {
          "value": "555-555-5555",
          "type": "work"
        },
        {
          "value": "555-555-4444",
          "type": "mobile"
        }
      ],
      "ims": [
        {
          "value": "someaimhandle",
          "type": "aim"
        }
      ],
      "photos": [
        {
          "value":
            "https://photos.example.com/profilephoto/72930000000Ccne/F",
          "type": "photo"
        },
        {
          "value":
            "https://photos.example.com/profilephoto/72930000000Ccne/T",
          "type": "thumbnail"
        }
      ],
      "userType": "Employee",
      "title": "Tour Guide",
      "preferredLanguage": "en-US",
      "locale": "en-US",
      "timezone": "America/Los_Angeles",
      "active":true,
      "password": "t1meMa$heen",
      "groups": [
        {
          "value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
          "$ref":
    "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
          "display": "Tour Guides"
        },
        {
          "value": "fc348aa8-3835-40eb-a20b-c726e15c55b5",
          "$ref":
    "https://example.com/v2/Groups/fc348aa8-3835-40eb-a20b-c726e15c55b5",
          "display": "Employees"
        },
        {
          "value": "71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7",
          "$ref":
    "https://example.com/v2/Groups/71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7",
          "display": "US Employees"
        }
      ],
      "x509Certificates": [
        {
          "value": RFC7643_CERTIFICATE
        }
      ],
      "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": "W/\"a330bc54f0671c9\"",
        "location":
    "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
      }
    })
}

/// RFC 7643 §8.3, Figure 5, with a unique userName.
fn rfc7643_enterprise_user(user_name: &str) -> Value {
    json!({
      "schemas":
        ["urn:ietf:params:scim:schemas:core:2.0:User",
          "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
      "id": "2819c223-7f76-453a-919d-413861904646",
      "externalId": "701984",
      "userName": user_name,
      "name": {
        "formatted": "Ms. Barbara J Jensen, III",
        "familyName": "Jensen",
        "givenName": "Barbara",
        "middleName": "Jane",
        "honorificPrefix": "Ms.",
        "honorificSuffix": "III"
      },
      "displayName": "Babs Jensen",
      "nickName": "Babs",
      "profileUrl": "https://login.example.com/bjensen",
      "emails": [
        {
          "value": "bjensen@example.com",
          "type": "work",
          "primary": true
        },
        {
          "value": "babs@jensen.org",
          "type": "home"
        }
      ],
      "addresses": [
        {
          "streetAddress": "100 Universal City Plaza",
          "locality": "Hollywood",
          "region": "CA",
          "postalCode": "91608",
          "country": "USA",
          "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
          "type": "work",
          "primary": true
        },
        {
          "streetAddress": "456 Hollywood Blvd",
          "locality": "Hollywood",
          "region": "CA",
          "postalCode": "91608",
          "country": "USA",
          "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA",
          "type": "home"
         }
      ],
      "phoneNumbers": [
        {
          "value": "555-555-5555",
          "type": "work"
        },
        {
          "value": "555-555-4444",
          "type": "mobile"
        }
      ],
      "ims": [
        {
          "value": "someaimhandle",
          "type": "aim"
        }
      ],
      "photos": [
        {
          "value":
            "https://photos.example.com/profilephoto/72930000000Ccne/F",
          "type": "photo"
        },
        {
          "value":
            "https://photos.example.com/profilephoto/72930000000Ccne/T",
          "type": "thumbnail"
        }
      ],
      "userType": "Employee",
      "title": "Tour Guide",
      "preferredLanguage": "en-US",
      "locale": "en-US",
      "timezone": "America/Los_Angeles",
      "active":true,
      "password": "t1meMa$heen",
      "groups": [
        {
          "value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
          "$ref": "../Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
          "display": "Tour Guides"
        },
        {
          "value": "fc348aa8-3835-40eb-a20b-c726e15c55b5",
          "$ref": "../Groups/fc348aa8-3835-40eb-a20b-c726e15c55b5",
          "display": "Employees"
        },
        {
          "value": "71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7",
          "$ref": "../Groups/71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7",
          "display": "US Employees"
        }
      ],
      "x509Certificates": [
        {
          "value": RFC7643_CERTIFICATE
        }
      ],
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {
          "value": "26118915-6090-4610-87e4-49d8ca9f808d",
          "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
          "displayName": "John Smith"
        }
      },
      "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
        "version": "W/\"3694e05e9dff591\"",
        "location":
    "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
      }
    })
}

/// The client-writable part of a User: without the readOnly `id`, `meta`, `groups` and
/// `manager.displayName` (RFC 7643 §3.1, §4.1.2, §4.3) and the writeOnly `password`
/// (§4.1.1). `schemas` is compared as a set. Names stay as spelled: the comparison is
/// case-sensitive, so a server must answer with the RFC's spelling.
fn client_writable(user: &Value) -> Value {
    let mut user = user.as_object().cloned().unwrap_or_default();
    for read_only in ["id", "meta", "groups", "password"] {
        user.remove(read_only);
    }
    if let Some(Value::Object(manager)) = user
        .get_mut(ENTERPRISE_URN)
        .and_then(|extension| extension.get_mut("manager"))
    {
        manager.remove("displayName");
    }
    if let Some(Value::Array(schemas)) = user.get_mut("schemas") {
        schemas.sort_by_key(|s| s.to_string());
    }
    Value::Object(user)
}

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
