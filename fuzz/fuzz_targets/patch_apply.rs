#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| scimbus::fuzzing::patch_apply(data));
