//! Galera SST compression benchmark (issue: SST compression benchmark).
