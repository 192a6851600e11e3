//! Any bytes, split into lines as halyard reads files: the parser never panics, what it writes
//! back parses to the same text again, and the flat record (what `halyard parse` prints) can be
//! built from it.
//!
//! From `fuzz/`: `mkdir -p corpus/parse_line && cargo fuzz run parse_line corpus/parse_line
//! ../fixtures/haproxy-2.6` (libFuzzer adds new inputs to the first directory only, so the
//! captured fixtures stay as they are and seed the run). On a stable toolchain, set
//! `RUSTC_BOOTSTRAP=1`.

#![no_main]

use halyard::input::lines;
use halyard::logline::{parse_line, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for line in lines(data) {
        let parsed = parse_line(line);
        let written = parsed.to_bytes();
        let reparsed = parse_line(&written);
        assert_eq!(reparsed.to_bytes(), written, "writing is not stable for {line:?}");
        assert_eq!(reparsed.kind(), parsed.kind(), "kind changed on re-reading {line:?}");
        let _ = Record::new(None, 1, &parsed);
    }
});
