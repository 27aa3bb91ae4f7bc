//! Request rate limits: one token bucket for the whole frontend (`frontend.rps`) and one per
//! namespace (`frontend.namespaceRPS`, or `frontend.globalNamespaceRPS` shared by the frontends
//! of the cluster). Rates can change at any time; buckets follow on their next use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use sundial_common::Error;
use sundial_common::error::ExhaustedCause;

/// Requests per second; zero or less means no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    pub rps: f64,
    pub namespace_rps: f64,
    pub global_namespace_rps: f64,
}

impl Default for RateLimits {
    /// Temporal's defaults.
    fn default() -> Self {
        RateLimits {
            rps: 2400.0,
            namespace_rps: 2400.0,
            global_namespace_rps: 0.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, now: Instant) -> Self {
        Bucket {
            tokens: rate.max(1.0),
            last: now,
        }
    }

    /// Takes one token if there is one. The burst is one second of the rate.
    fn try_take(&mut self, rate: f64, now: Instant) -> bool {
        let burst = rate.max(1.0);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Per-namespace rates: `(namespace_rps, global_namespace_rps)` for a namespace name, so values
/// constrained to one namespace apply to it.
pub type NamespaceRates = Arc<dyn Fn(&str) -> (f64, f64) + Send + Sync>;

pub struct RateLimiter {
    limits: RwLock<RateLimits>,
    namespace_rates: RwLock<Option<NamespaceRates>>,
    /// Frontends sharing the cluster-wide namespace rate.
    frontend_count: u32,
    global: Mutex<Option<Bucket>>,
    namespaces: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits: RwLock::new(limits),
            namespace_rates: RwLock::new(None),
            frontend_count: 1,
            global: Mutex::new(None),
            namespaces: Mutex::new(HashMap::new()),
        }
    }

    pub fn set_limits(&self, limits: RateLimits) {
        *self.limits.write() = limits;
    }

    /// Replaces the namespace rates of `RateLimits` with a per-namespace lookup (or stops).
    pub fn set_namespace_rates(&self, rates: Option<NamespaceRates>) {
        *self.namespace_rates.write() = rates;
    }

    pub fn limits(&self) -> RateLimits {
        *self.limits.read()
    }

    fn namespace_rate(&self, limits: &RateLimits, namespace: &str) -> f64 {
        let (namespace_rps, global_namespace_rps) = match &*self.namespace_rates.read() {
            Some(rates) => rates(namespace),
            None => (limits.namespace_rps, limits.global_namespace_rps),
        };
        if global_namespace_rps > 0.0 {
            global_namespace_rps / f64::from(self.frontend_count.max(1))
        } else {
            namespace_rps
        }
    }

    /// Admits one request for a namespace, or says why not.
    pub fn admit(&self, namespace: &str) -> Result<(), Error> {
        self.admit_at(namespace, Instant::now())
    }

    fn admit_at(&self, namespace: &str, now: Instant) -> Result<(), Error> {
        let limits = self.limits();
        if limits.rps > 0.0 {
            let mut global = self.global.lock();
            let bucket = global.get_or_insert_with(|| Bucket::new(limits.rps, now));
            if !bucket.try_take(limits.rps, now) {
                return Err(Error::ResourceExhausted {
                    message: "service rate limit exceeded".into(),
                    cause: ExhaustedCause::RpsLimit,
                });
            }
        }
        let namespace_rate = self.namespace_rate(&limits, namespace);
        if namespace_rate > 0.0 {
            let mut namespaces = self.namespaces.lock();
            let bucket = namespaces
                .entry(namespace.to_string())
                .or_insert_with(|| Bucket::new(namespace_rate, now));
            if !bucket.try_take(namespace_rate, now) {
                return Err(Error::ResourceExhausted {
                    message: "namespace rate limit exceeded".into(),
                    cause: ExhaustedCause::RpsLimit,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn admitted(limiter: &RateLimiter, namespace: &str, count: usize, now: Instant) -> usize {
        (0..count)
            .filter(|_| limiter.admit_at(namespace, now).is_ok())
            .count()
    }

    #[test]
    fn per_namespace_rates_apply_to_their_namespace_only() {
        let limiter = RateLimiter::new(RateLimits {
            rps: 0.0,
            namespace_rps: 0.0,
            global_namespace_rps: 0.0,
        });
        limiter.set_namespace_rates(Some(Arc::new(|namespace: &str| {
            if namespace == "small" {
                (5.0, 0.0)
            } else {
                (0.0, 0.0)
            }
        })));
        let now = Instant::now();
        assert_eq!(admitted(&limiter, "small", 20, now), 5);
        assert_eq!(admitted(&limiter, "other", 20, now), 20);
        limiter.set_namespace_rates(None);
        assert_eq!(admitted(&limiter, "small", 20, now), 20);
    }

    #[test]
    fn namespace_limit_admits_a_second_of_burst_then_refills() {
        let limiter = RateLimiter::new(RateLimits {
            rps: 0.0,
            namespace_rps: 10.0,
            global_namespace_rps: 0.0,
        });
        let start = Instant::now();
        assert_eq!(admitted(&limiter, "a", 50, start), 10);
        assert_eq!(
            admitted(&limiter, "b", 50, start),
            10,
            "namespaces have their own buckets"
        );
        assert_eq!(
            admitted(&limiter, "a", 50, start + Duration::from_millis(500)),
            5
        );
    }

    #[test]
    fn global_limit_covers_every_namespace_and_changes_live() {
        let limiter = RateLimiter::new(RateLimits {
            rps: 5.0,
            namespace_rps: 0.0,
            global_namespace_rps: 0.0,
        });
        let start = Instant::now();
        assert_eq!(
            admitted(&limiter, "a", 3, start) + admitted(&limiter, "b", 10, start),
            5
        );
        let refused = limiter.admit_at("a", start).unwrap_err();
        assert!(matches!(
            refused,
            Error::ResourceExhausted {
                cause: ExhaustedCause::RpsLimit,
                ..
            }
        ));
        limiter.set_limits(RateLimits {
            rps: 0.0,
            namespace_rps: 0.0,
            global_namespace_rps: 0.0,
        });
        assert_eq!(
            admitted(&limiter, "a", 100, start),
            100,
            "zero means unlimited"
        );
    }

    #[test]
    fn global_namespace_rate_overrides_the_per_host_rate() {
        let limiter = RateLimiter::new(RateLimits {
            rps: 0.0,
            namespace_rps: 100.0,
            global_namespace_rps: 3.0,
        });
        assert_eq!(admitted(&limiter, "a", 10, Instant::now()), 3);
    }
}
