//! Replays the fuzz targets' committed corpus and crash inputs (`fuzz/corpus/<target>/`,
//! `fuzz/artifacts/<target>/`) as an ordinary test: every input the fuzzers kept, and every
//! input that once crashed, must run to completion. `docs/reliability.md` tells how to
//! fuzz further.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).unwrap_or_default();
            run(&data);
            count += 1;
        }
    }
    assert!(count > 0, "no corpus for {target}");
}

#[test]
fn the_filter_corpus_replays_without_panics() {
    replay("filter", scimbus::fuzzing::filter);
}

#[test]
fn the_patch_path_corpus_replays_without_panics() {
    replay("patch_path", scimbus::fuzzing::patch_path);
}

#[test]
fn the_patch_apply_corpus_replays_without_panics() {
    replay("patch_apply", scimbus::fuzzing::patch_apply);
}

#[test]
fn the_validate_corpus_replays_without_panics() {
    replay("validate", scimbus::fuzzing::validate);
}
