//! The embedded windowed metrics collector: per-service latency, error and saturation.
//!
//! Each service gets a [`ServiceWindow`] over its last N events *and* its last T seconds
//! (`window.rs` documents the layout and its memory numbers). Recording is O(1) and
//! never reads a clock: callers pass every timestamp. Quantiles use the nearest-rank
//! definition — the q-quantile of n values is the ⌈q·n⌉-th smallest, and q = 0 is the
//! minimum ([`rank`]) — and come either from the histograms (Fast, < 1 % relative error) or
//! exactly (Exact, equal to sorting a copy). Alert rules are decided from counts of values
//! at or below a threshold ([`Signal`]), and a [`WindowReport`] is the serde value frozen
//! onto incidents. A [`Registry`] shares the windows across threads.

mod exact;
mod histogram;
mod registry;
mod ring;
mod rules;
mod snapshot;
mod window;

#[cfg(test)]
mod proptests;

pub use histogram::{Count, Histogram, Layout, MAX_VALUE_US, RankLocation, rank, saturate_us};
pub use registry::{Event, MAX_SERVICE_NAME_LEN, MAX_SERVICES_CAP, Registry, Rule, ServiceName};
pub use rules::Signal;
pub use snapshot::{
    HistogramBin, LatencyMs, QuantileMode, SaturationStats, SeriesPoint, WindowReport, WindowStats,
};
pub use window::{Quantiles, Scope, ServiceWindow, WindowConfig};

/// Everything that can go wrong when recording into or reading from the collector.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// The service name is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    #[error(
        "invalid service name {name:?}: use 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'"
    )]
    InvalidServiceName {
        /// The rejected name (cut to 80 characters).
        name: String,
    },
    /// Recording would start tracking one service more than the cap allows.
    #[error(
        "cannot start tracking service {service:?}: the collector is at its cap of {cap} services"
    )]
    TooManyServices {
        /// The service that was refused.
        service: String,
        /// The configured cap.
        cap: usize,
    },
    /// Nothing was ever recorded for this service.
    #[error("no metrics have been recorded for service {0:?}")]
    UnknownService(String),
    /// The window sizes do not validate.
    #[error("invalid window config: {0}")]
    InvalidConfig(&'static str),
    /// A saturation sample that is not a finite number in `0..=1e15`.
    #[error("saturation must be a finite number between 0 and 1e15, got {0}")]
    InvalidSaturation(f64),
}
