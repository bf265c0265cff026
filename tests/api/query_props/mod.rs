//! Property tests of `GET /Users?filter=…` on both backends: a random population created
//! over HTTP, random filters from a grammar over its attributes (sometimes with `sortBy` and
//! small pages); the server must list exactly the users the reference evaluator
//! (`scim::query::eval`) accepts, in an order its comparator accepts.

// CI runs one fixed seed: 64 cases over one population of 40 users per backend, after the
// committed regressions (query_props.proptest-regressions). A long random run:
//
//     SCIMBUS_PROPTEST_CASES=2000 SCIMBUS_PROPTEST_SEED=random \
//         cargo test --test api query_props -- --nocapture
//
// The seed in use is printed and named in every failure; `SCIMBUS_PROPTEST_SEED=<u64>`
// replays it (population and filters). A failure shows the shrunk case, both id sets and
// the users on which they differ.

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, RngSeed, TestCaseError, TestError, TestRng,
    TestRunner,
};

use crate::both_backends;
use crate::helpers::{Backend, spawn_app};
use crate::query::{Kind, mismatch_sorted};

mod expressions;
mod leaves;
mod population;

use expressions::case;
use leaves::Pool;
use population::{person, populate};

both_backends!(listed_users_are_exactly_those_the_reference_evaluator_accepts);

const DEFAULT_SEED: u64 = 7644;
const DEFAULT_CASES: u32 = 64;
const POPULATION: usize = 40;
const REGRESSIONS: &str = "tests/api/query_props.proptest-regressions";

/// Case variants, non-ASCII (folding: É/é, ß has no one-letter upper case, ﬁ is NFKC "fi"),
/// and LIKE's metacharacters.
const ALPHABET: &[&str] = &["a", "A", "b", "B", "É", "é", "ß", "ﬁ", "%", "_", "\\", " "];

fn seed() -> u64 {
    match std::env::var("SCIMBUS_PROPTEST_SEED").as_deref() {
        Ok("random") => rand::random(),
        Ok(n) => n
            .parse()
            .unwrap_or_else(|_| panic!("SCIMBUS_PROPTEST_SEED={n}: a u64 or `random`")),
        Err(_) => DEFAULT_SEED,
    }
}

fn cases() -> u32 {
    std::env::var("SCIMBUS_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn text(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> + Clone {
    vec(select(ALPHABET), len).prop_map(|chars| chars.concat())
}

async fn listed_users_are_exactly_those_the_reference_evaluator_accepts(backend: Backend) {
    let seed = seed();
    let cases = cases();
    println!("{backend:?}: SCIMBUS_PROPTEST_SEED={seed} SCIMBUS_PROPTEST_CASES={cases}");
    let app = spawn_app(backend).await;

    let mut seeder = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(seed)),
    );
    let people = vec(person(), POPULATION)
        .new_tree(&mut seeder)
        .unwrap()
        .current();
    let users = populate(&app, &people).await;
    let pool = Pool::of(&users);

    let config = Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(REGRESSIONS))),
        max_shrink_iters: 512,
        ..Config::default()
    };
    let app = Arc::new(app);
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking({
        let app = app.clone();
        move || {
            let mut runner = TestRunner::new(config);
            let result = runner.run(&case(), |c| {
                let raw = c.filter.render(&pool);
                let checked = mismatch_sorted(&app, Kind::Users, &raw, c.sort(), c.page, &users);
                match handle.block_on(checked) {
                    None => Ok(()),
                    Some(m) => Err(TestCaseError::fail(m)),
                }
            });
            result.map_err(|e| match e {
                TestError::Fail(why, c) => format!("{why}\n(shrunk case: {})", c.describe(&pool)),
                TestError::Abort(why) => format!("aborted: {why}"),
            })
        }
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!(
            "{backend:?}, SCIMBUS_PROPTEST_SEED={seed}: the server and the reference evaluator \
             disagree\n{failure}"
        );
    }
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0_u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.wrapping_add(i as u64)).to_le_bytes());
    }
    bytes
}
