//! Intake: the inputs users write, read into records and events.
//!
//! - [`lines`]: the one line reader (sequential, and the parallel block
//!   reader of record files), used by the CLI and the Python binding alike;
//! - [`jsonl`]: the JSONL grammar of record registrations and events
//!   (subject ids become pseudonyms here, on the way in).
//!
//! Parsing is all-or-nothing: the first bad line stops it with the file,
//! line and field, and nothing of the input is returned.

pub mod jsonl;
pub mod lines;
