//! optout: a ledger that makes AI training honour people's objections.
#![deny(missing_docs)]

pub mod storage;
