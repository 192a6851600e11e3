//! halyard: the HAProxy log pipeline in one program.
//!
//! - [`logline`]: the one model of an HAProxy log line, its parser and its formatter.
//! - [`input`]: reading log files (plain, `.gz`, stdin) as numbered lines.

pub mod input;
pub mod logline;
