//! Client-side pacing: one GCRA rate limiter (the `governor` crate) per AWS API
//! and (account, region), so a storm stays inside each API's quota instead of
//! finding it by being throttled. The SDK's adaptive retry mode (see
//! [`crate::aws::load`]) handles what still gets throttled.
//!
//! Defaults are the documented quotas: Security Hub's BatchUpdateFindings
//! 10 requests/s with a burst of 30, GetFindings 3/s with a burst of 6. Neptune's
//! calls go through the RDS API, which allows each account a burst of 300 and a
//! sustained 12 requests/s for all callers together; hubtriage's default takes
//! 10/s with a burst of 200 of that, per account and region (`[pacing]`).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use crate::config::{Rate, Rates};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

/// The APIs hubtriage paces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    BatchUpdateFindings,
    GetFindings,
    /// The new Security Hub's calls: no quota is published for them, so they
    /// are paced like V1's by default, and configurable.
    BatchUpdateFindingsV2,
    GetFindingsV2,
    /// DescribeDBClusters, DescribeDBClusterParameters, DescribeDBInstances,
    /// ListTagsForResource: Neptune's read calls.
    NeptuneRead,
}

/// Which limiter: the API, the account (`None`: the daemon's own) and the region.
type Key = (Api, Option<String>, String);

/// The limiters, made on first use per (API, account, region) and kept.
pub struct Pacer {
    rates: Rates,
    clock: DefaultClock,
    limiters: Mutex<HashMap<Key, Option<Arc<DefaultDirectRateLimiter>>>>,
}

impl Pacer {
    pub fn new(rates: Rates) -> Self {
        Pacer {
            rates,
            clock: DefaultClock::default(),
            limiters: Mutex::default(),
        }
    }

    /// Waits until a call of `api` in (account, region) fits its rate.
    pub async fn wait(&self, api: Api, account: Option<&str>, region: &str) {
        let Some(limiter) = self.limiter(api, account, region) else {
            return;
        };
        while let Err(not_until) = limiter.check() {
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
    }

    fn limiter(
        &self,
        api: Api,
        account: Option<&str>,
        region: &str,
    ) -> Option<Arc<DefaultDirectRateLimiter>> {
        let key = (api, account.map(str::to_string), region.to_string());
        crate::lock(&self.limiters)
            .entry(key)
            .or_insert_with(|| {
                quota(rate_of(&self.rates, api)).map(|q| Arc::new(governor::RateLimiter::direct(q)))
            })
            .clone()
    }
}

/// The rate `[pacing]` gives `api`.
fn rate_of(rates: &Rates, api: Api) -> Rate {
    match api {
        Api::BatchUpdateFindings => rates.batch_update_findings,
        Api::GetFindings => rates.get_findings,
        Api::BatchUpdateFindingsV2 => rates.batch_update_findings_v2,
        Api::GetFindingsV2 => rates.get_findings_v2,
        Api::NeptuneRead => rates.neptune_read,
    }
}

/// `None` when the rate turns pacing off.
fn quota(rate: Rate) -> Option<Quota> {
    let per_second = NonZeroU32::new(rate.per_second)?;
    let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
    Some(Quota::per_second(per_second).allow_burst(burst))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn rates(per_second: u32, burst: u32) -> Rates {
        Rates {
            batch_update_findings: Rate { per_second, burst },
            ..Rates::unpaced()
        }
    }

    #[tokio::test]
    async fn a_burst_goes_at_once_then_calls_keep_to_the_rate() {
        let pacer = Pacer::new(rates(20, 5));
        let started = Instant::now();
        for _ in 0..5 {
            pacer
                .wait(Api::BatchUpdateFindings, None, "us-east-1")
                .await;
        }
        assert!(started.elapsed().as_millis() < 40, "the burst waited");
        for _ in 0..4 {
            pacer
                .wait(Api::BatchUpdateFindings, None, "us-east-1")
                .await;
        }
        // Four more at 20/s: about 200 ms.
        let took = started.elapsed().as_millis();
        assert!((150..1000).contains(&took), "took {took} ms");
    }

    #[tokio::test]
    async fn each_account_and_region_has_its_own_budget() {
        let pacer = Pacer::new(rates(1, 1));
        let started = Instant::now();
        pacer
            .wait(Api::BatchUpdateFindings, None, "us-east-1")
            .await;
        pacer
            .wait(Api::BatchUpdateFindings, None, "eu-west-1")
            .await;
        pacer
            .wait(Api::BatchUpdateFindings, Some("222222222222"), "us-east-1")
            .await;
        pacer.wait(Api::GetFindings, None, "us-east-1").await;
        assert!(started.elapsed().as_millis() < 100);
    }

    #[test]
    fn the_defaults_are_the_documented_quotas() {
        let r = Rates::default();
        assert_eq!(
            r.batch_update_findings,
            Rate {
                per_second: 10,
                burst: 30
            }
        );
        assert_eq!(
            r.get_findings,
            Rate {
                per_second: 3,
                burst: 6
            }
        );
    }
}
