//! What changed between two stored documents, for events' `changed` and `previous`.

use serde_json::{Map, Value};

/// Names of the attributes that differ between two documents (extension attributes as
/// `urn:…:name`), and their previous values (null where absent).
pub fn diff(
    old: &Map<String, Value>,
    new: &Map<String, Value>,
) -> (Vec<String>, Map<String, Value>) {
    let mut changed = Vec::new();
    let mut previous = Map::new();
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        if key.starts_with("urn:")
            && let (Some(Value::Object(a)), Some(Value::Object(b))) = (a, b)
        {
            let (sub_changed, sub_previous) = diff(a, b);
            for name in sub_changed {
                let qualified = format!("{key}:{name}");
                previous.insert(
                    qualified.clone(),
                    sub_previous.get(&name).cloned().unwrap_or(Value::Null),
                );
                changed.push(qualified);
            }
            continue;
        }
        changed.push(key.clone());
        previous.insert(key.clone(), a.cloned().unwrap_or(Value::Null));
    }
    (changed, previous)
}

#[cfg(test)]
mod tests {
    use super::diff;
    use serde_json::json;

    #[test]
    fn diff_names_changed_attributes_and_their_previous_values() {
        let old = json!({"userName": "a", "title": "x", "urn:e:User": {"d": 1, "k": 2}});
        let new = json!({"userName": "a", "nickName": "n", "urn:e:User": {"d": 2, "k": 2}});
        let (changed, previous) = diff(old.as_object().unwrap(), new.as_object().unwrap());
        assert_eq!(changed, vec!["nickName", "title", "urn:e:User:d"]);
        assert_eq!(previous["title"], "x");
        assert_eq!(previous["nickName"], serde_json::Value::Null);
        assert_eq!(previous["urn:e:User:d"], 1);
    }
}
