//! The steps of the one-setting fixes: ModifyDBCluster (Neptune.4, .5, .7,
//! .8) and ModifyDBClusterSnapshotAttribute (Neptune.3), applied at once,
//! and their verification: the resource read again in the same pass.

use super::{Pass, PassError, PassResult};
use crate::control::change::Change;
use crate::control::{ClusterSetting, SettingValue};
use crate::state::{ClusterState, LiveResource, SnapshotState};

impl Pass<'_> {
    /// ModifyDBCluster with one setting; Neptune applies it at once.
    pub(super) async fn modify_cluster(
        &mut self,
        setting: ClusterSetting,
        value: SettingValue,
        change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        let name = setting.as_str();
        let entry = self.changing(&change).await?;
        let (region, cluster) = (self.arn.region, self.arn.identifier);
        let modified = self
            .api
            .modify_cluster(region, cluster, setting, value)
            .await;
        self.journal_ended(entry, &modified).await;
        modified?;
        self.progress
            .modified
            .push(format!("set {name} to {value}"));
        self.changed_now();
        Ok(None)
    }

    /// ModifyDBClusterSnapshotAttribute: `all` out of `restore`.
    pub(super) async fn make_private(
        &mut self,
        snapshot: &str,
        change: Change,
    ) -> Result<Option<PassResult>, PassError> {
        let entry = self.changing(&change).await?;
        let made = self
            .api
            .make_snapshot_private(self.arn.region, snapshot)
            .await;
        self.journal_ended(entry, &made).await;
        made?;
        self.progress
            .modified
            .push("removed all from the snapshot's restore attribute".into());
        self.changed_now();
        Ok(None)
    }

    /// Always last, after a one-setting fix: the resource read again, and the
    /// control finds nothing wrong in it.
    pub(super) async fn verify_again(&mut self) -> Result<PassResult, PassError> {
        let (region, id) = (self.arn.region, self.arn.identifier);
        let after = match self.job.live {
            LiveResource::Cluster(c) => match self.api.cluster_settings(region, id).await? {
                Some(settings) => After::Cluster(ClusterState {
                    settings,
                    ..c.clone()
                }),
                None => After::Gone,
            },
            LiveResource::Snapshot(s) => match self.api.snapshot_restore(region, id).await? {
                Some(restore) => After::Snapshot(SnapshotState {
                    restore,
                    ..s.clone()
                }),
                None => After::Gone,
            },
        };
        let live = match &after {
            After::Cluster(c) => LiveResource::Cluster(c),
            After::Snapshot(s) => LiveResource::Snapshot(s),
            After::Gone => {
                return Ok(PassResult::Refused {
                    why: "it no longer exists.".into(),
                })
            }
        };
        let problems = self.job.control.problems(live, self.job.criteria());
        if !problems.is_empty() {
            return Ok(self.waiting(format!("verify: {}", problems.join("; "))));
        }
        let seen = self.job.control.verified(live, self.job.criteria());
        Ok(PassResult::Verified { seen })
    }
}

/// A resource as read again after its fix.
enum After {
    Cluster(ClusterState),
    Snapshot(SnapshotState),
    Gone,
}
