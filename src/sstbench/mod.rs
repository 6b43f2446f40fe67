//! Galera SST compression benchmark: candidate codecs run over a real data set through a
//! reader → compressor → throttled loopback link → decompressor → verifying sink pipeline,
//! measured per stage, then ranked and turned into a recommended `[sst]` section.
//!
//! One file per concern: [`codecs`] (the methods, in-process and as Debian tools), [`pipeline`]
//! (one measured transfer), [`throttle`] (bandwidths, sizes, the token bucket), [`datagen`] and
//! [`input`] and [`server`] (what is transferred: files, generated data, a mariabackup stream), [`bench`] (all methods × repeats), [`report`] (the results as
//! data), [`recommend`] (the advice and the `[sst]` section), [`model`] (`--model-only`: durations
//! computed from codec speeds), [`clock`] (CPU clocks).

pub mod bench;
pub mod clock;
pub mod codecs;
pub mod datagen;
pub mod input;
pub mod model;
pub mod pipeline;
pub mod recommend;
pub mod report;
pub mod server;
pub mod throttle;
