//! A tenant's mass-deprovisioning brake settings (DESIGN 20): a value the admin API and
//! CLI accept, the store keeps and the brake's rules (`events::brake`) apply.

use serde::{Deserialize, Serialize};

/// An integer however the JSON writes it (`2601.0` is 2601, as JSON Schema's `integer`
/// says).
/// One measure's limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// Trips above this many within the window.
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "crate::scim::validate::whole")]
    pub count: i64,
    /// Trips above this share of the tenant (0–100), once `min` is reached.
    #[schema(minimum = 0, maximum = 100)]
    pub percent: f64,
    /// The share applies from this many on (a small tenant's few changes are no mass event).
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "crate::scim::validate::whole")]
    pub min: i64,
}

/// A tenant's brake settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrakeSettings {
    pub enabled: bool,
    /// The sliding window, in seconds (at most 30 days).
    #[schema(minimum = 1, maximum = 2_592_000)]
    #[serde(deserialize_with = "crate::scim::validate::whole")]
    pub window_seconds: i64,
    /// Users deactivated or deleted.
    pub users: Threshold,
    /// Members removed from groups.
    pub members: Threshold,
    /// Groups deleted.
    pub groups: Threshold,
    /// Release a hold by itself after this many seconds (`null`: only an operator does).
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::scim::validate::whole_or_null")]
    pub auto_release_seconds: Option<i64>,
}

impl Default for BrakeSettings {
    /// On by default (docs/decisions.md "Brake"): more than 500 users, or 20 % of the active
    /// users (from 25 on), deprovisioned within an hour; memberships and groups alike.
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: 3600,
            users: Threshold {
                count: 500,
                percent: 20.0,
                min: 25,
            },
            members: Threshold {
                count: 5000,
                percent: 20.0,
                min: 250,
            },
            groups: Threshold {
                count: 100,
                percent: 20.0,
                min: 10,
            },
            auto_release_seconds: None,
        }
    }
}

impl BrakeSettings {
    /// Settings that make sense: a positive window, non-negative limits, shares 0–100.
    pub fn check(&self) -> Result<(), String> {
        if self.window_seconds < 1 || self.window_seconds > 30 * 86_400 {
            return Err("`window_seconds` must be 1 to 2592000 (30 days)".to_owned());
        }
        if self.auto_release_seconds.is_some_and(|s| s < 1) {
            return Err("`auto_release_seconds` must be positive or null".to_owned());
        }
        for (name, t) in [
            ("users", self.users),
            ("members", self.members),
            ("groups", self.groups),
        ] {
            if t.count < 0 || t.min < 0 || !(0.0..=100.0).contains(&t.percent) {
                return Err(format!(
                    "`{name}`: `count` and `min` must not be negative, `percent` 0 to 100"
                ));
            }
        }
        Ok(())
    }
}
