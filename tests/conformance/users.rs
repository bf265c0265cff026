//! The users the tests create: RFC 7643 §8.1's minimal user, §8.2's full user and §8.3's
//! enterprise user, with unique userNames, and which of their attributes a client writes.

use serde_json::{Value, json};

use super::ENTERPRISE_URN;

/// A userName no other test run uses, built from the RFC's example name.
pub(super) fn unique_user_name(local_part: &str) -> String {
    format!("{local_part}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// RFC 7643 §8.1, Figure 3, with a unique userName.
pub(super) fn rfc7643_minimal_user(user_name: &str) -> Value {
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
pub(super) fn rfc7643_full_user(user_name: &str) -> Value {
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
pub(super) fn rfc7643_enterprise_user(user_name: &str) -> Value {
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
pub(super) fn client_writable(user: &Value) -> Value {
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
