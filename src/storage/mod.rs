//! Durable storage: the hash-chained event log and snapshots (payload-agnostic).
