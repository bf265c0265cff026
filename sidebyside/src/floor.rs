//! The floor: per scenario, a hand-written pgbench script with the fewest statements that do
//! the scenario's database work on scimbus's own tables and indexes — no token lookup, no
//! tenant counter, no recursive group walk — writing rows shaped like the ones scimbus
//! writes (documents and event payloads copied from rows the service wrote at set-up).
//!
//! An event's `sequence` comes from a PostgreSQL sequence created in the bench cluster
//! (`bench_floor_seq`, far above every tenant's own numbers), never from
//! `tenants.event_seq`, so the floor stays the same whatever mechanism scimbus uses to
//! number its events. The rows the floor writes to `outbox` are deleted after its run.
//!
//! The types the floor is written from are here; `scripts` writes the pgbench scripts and
//! `bench` takes the templates and runs the scripts.

use anyhow::Context;

mod bench;
mod scripts;

/// Sequence values the floor's outbox rows take: above anything a tenant reaches in a run.
pub const SEQ_START: i64 = 5_000_000_000_000;
pub const SEQ_NAME: &str = "bench_floor_seq";

/// An event the service wrote, used as the model of the floor's outbox rows.
#[derive(Clone, Debug, Default)]
pub struct EventTemplate {
    pub event_type: String,
    /// The routing key without the tenant slug (`.user.created`).
    pub routing_suffix: String,
    pub payload: String,
    /// The event's own id, in `payload`.
    pub event_id: String,
    /// The zero-padded sequence as it appears in `payload`.
    pub sequence_text: String,
}

impl EventTemplate {
    /// From an outbox row: (event_type, routing_key, payload, id, sequence) of tenant `slug`.
    pub fn from_row(slug: &str, row: &str) -> anyhow::Result<Self> {
        let mut f = row.splitn(5, '\u{1f}');
        let event_type = f.next().context("event_type")?.to_owned();
        let routing_key = f.next().context("routing_key")?;
        let payload = f.next().context("payload")?.to_owned();
        let event_id = f.next().context("id")?.to_owned();
        let sequence: i64 = f.next().context("sequence")?.trim().parse()?;
        let routing_suffix = routing_key
            .strip_prefix(slug)
            .context("routing key without the tenant")?
            .to_owned();
        // The envelope's sequence is zero-padded; find its width in the payload itself.
        let digits = sequence.to_string();
        let sequence_text = payload
            .match_indices(&digits)
            .filter_map(|(at, _)| {
                let start = payload[..at].rfind(|c: char| c != '0').map_or(0, |i| i + 1);
                let text = &payload[start..at + digits.len()];
                payload[..start].ends_with('"').then(|| text.to_owned())
            })
            .max_by_key(String::len)
            .unwrap_or(digits);
        Ok(Self {
            event_type,
            routing_suffix,
            payload,
            event_id,
            sequence_text,
        })
    }
}

/// What the floor scripts are written from.
#[derive(Clone, Debug, Default)]
pub struct Templates {
    /// The slug the templates were written under (`bench`).
    pub slug: String,
    /// A user's `resource` and `search` documents, with `user_token` for its userName
    /// and `ext_token` for its externalId; `user_id` is its id.
    pub user_doc: String,
    pub user_search: Option<String>,
    pub user_token: String,
    pub ext_token: String,
    pub user_id: String,
    pub display_name: String,
    pub display_name_ci: String,
    pub group_id: String,
    pub created: EventTemplate,
    pub deactivated: EventTemplate,
    pub reactivated: EventTemplate,
    pub added: EventTemplate,
    pub removed: EventTemplate,
    /// A timestamp in the service's format, used for created_at/updated_at.
    pub now: String,
}

/// The scenarios that have a floor.
#[derive(Clone, Debug)]
pub enum Kind {
    /// GET /Users/{id} of a user in `lo..=hi`.
    Get {
        lo: u64,
        hi: u64,
    },
    /// userName eq of a user in `lo..=hi` (ids equal userNames in the seeded data).
    Filter {
        lo: u64,
        hi: u64,
    },
    /// COUNT and a page of 100 at a random OFFSET in `0..=max_offset`.
    ListIndex {
        max_offset: u64,
    },
    /// The first page, no count.
    ListCursor,
    Create,
    /// PATCH active=false then PUT (active again), user in `lo..=hi`.
    PatchPut {
        lo: u64,
        hi: u64,
    },
    /// Add member `spare_base + client_id` to group `gid`, then remove it.
    AddRemove {
        gid: String,
        spare_base: u64,
    },
}

/// A tenant the floor writes to.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
}

#[cfg(test)]
mod tests {
    use super::scripts::script;
    use super::*;

    #[test]
    fn the_padded_sequence_is_found_in_the_payload() -> anyhow::Result<()> {
        let row = "scimbus.user.created\u{1f}bench.user.created\u{1f}{\"id\": \"e1\", \"sequence\": \"0000000001000000001\", \"data\": {\"version\": 1}}\u{1f}e1\u{1f}1000000001";
        let ev = EventTemplate::from_row("bench", row)?;
        assert_eq!(ev.sequence_text, "0000000001000000001");
        assert_eq!(ev.routing_suffix, ".user.created");
        Ok(())
    }

    #[test]
    fn scripts_count_their_statements_and_name_constants_per_prefix() {
        let t = Templates {
            slug: "bench".into(),
            user_doc: "{\"userName\": \"zzuserzz\"}".into(),
            user_token: "zzuserzz".into(),
            ext_token: "zzextzz".into(),
            now: "2026-01-01T00:00:00.000Z".into(),
            ..Default::default()
        };
        let tenant = Tenant {
            id: "tid".into(),
            slug: "bench-2".into(),
        };
        let s = script("f2", &Kind::Create, &tenant, &t);
        assert_eq!(s.statements, 2);
        assert!(s.defines.iter().all(|(n, _)| n.starts_with("f2_")));
        assert!(s.text.contains("nextval('bench_floor_seq')"));
        let s = script(
            "f",
            &Kind::AddRemove {
                gid: "g".into(),
                spare_base: 7,
            },
            &tenant,
            &t,
        );
        assert_eq!((s.statements, s.requests), (6, 2));
    }
}
