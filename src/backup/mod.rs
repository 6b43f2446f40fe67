//! Chunked backup streaming to object storage (issue: backup streaming).
