//! Groups: members as rows, uniqueness, existence and cycle checks, computed `groups` of a
//! user, membership events in O(delta), ETags and preconditions.

use serde_json::{Value, json};

use crate::helpers::TestApp;

pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

mod changes;
mod members;

pub fn group(name: &str, members: &[&Value]) -> Value {
    let members: Vec<Value> = members.iter().map(|m| json!({"value": m["id"]})).collect();
    json!({"schemas": [GROUP_URN], "displayName": name, "members": members})
}

impl TestApp {
    pub async fn create_group(&self, body: &Value) -> Value {
        let response = self.post("/Groups", body).await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    pub async fn fetch(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }
}

pub fn patch_op(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| m["value"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn id(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}
