//! The Neptune.2 remediation executor.
//!
//! A remediation runs in *passes*. Each pass reads live state, recomputes the plan
//! (`decide::plan`: only what is still missing), and carries out steps in order
//! until one needs time (a cluster modification, a reboot, the maintenance
//! window, logs to start flowing). Then it returns `Waiting` and the daemon
//! schedules a re-check on the queue, so no worker and no message is held for
//! minutes, and a restart or another replica resumes from live state. Every
//! step is idempotent: a pass run twice changes nothing the second time.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::Error;
use crate::config::{RebootPolicy, Remediation};
use crate::decide::{audit_log_group, plan, Step};
use crate::finding::ClusterArn;
use crate::state::{ClusterState, AUDIT_PARAMETER};
use crate::window::Window;

/// A parameter to set: name, value, apply method.
pub type ParameterValue = (String, String, String);

/// The calls remediation makes (Neptune, CloudWatch Logs, IAM), per region.
#[async_trait]
pub trait FixApi: Send + Sync {
    /// IAM: does `AWSServiceRoleForRDS` exist?
    async fn service_linked_role_exists(&self) -> Result<bool, Error>;
    /// Creates the group; `Ok(false)` when it already exists.
    async fn create_group(&self, region: &str, name: &str, family: &str) -> Result<bool, Error>;
    /// Parameters a user set in the group (`Source` = user).
    async fn user_parameters(
        &self,
        region: &str,
        group: &str,
    ) -> Result<Vec<ParameterValue>, Error>;
    async fn set_parameters(
        &self,
        region: &str,
        group: &str,
        params: &[ParameterValue],
    ) -> Result<(), Error>;
    async fn attach_group(&self, region: &str, cluster: &str, group: &str) -> Result<(), Error>;
    async fn enable_audit_export(&self, region: &str, cluster: &str) -> Result<(), Error>;
    /// `DBInstanceStatus`, `None` when the instance does not exist.
    async fn instance_status(&self, region: &str, instance: &str) -> Result<Option<String>, Error>;
    async fn reboot(&self, region: &str, instance: &str) -> Result<(), Error>;
    /// `None`: the log group does not exist; `Some(days)`: its retention (None = never expire).
    async fn log_group_retention(
        &self,
        region: &str,
        log_group: &str,
    ) -> Result<Option<Option<i32>>, Error>;
    async fn put_retention(&self, region: &str, log_group: &str, days: i32) -> Result<(), Error>;
    async fn has_log_stream(&self, region: &str, log_group: &str) -> Result<bool, Error>;
}

/// The cluster as it was when the remediation started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Original {
    pub parameter_group: String,
    pub audit_exported: bool,
    pub audit_value: String,
}

/// What a remediation in progress carries from pass to pass (in its re-check message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub started_at: DateTime<Utc>,
    /// Verification must succeed by then; moved on by each change and by window waits.
    pub deadline: DateTime<Utc>,
    pub original: Original,
    #[serde(default)]
    pub created_group: Option<String>,
    #[serde(default)]
    pub copied_parameters: usize,
    #[serde(default)]
    pub rebooted: Vec<String>,
    #[serde(default)]
    pub retention_set: Option<i32>,
}

impl Progress {
    pub fn start(state: &ClusterState, policy: &Remediation, now: DateTime<Utc>) -> Self {
        Progress {
            started_at: now,
            deadline: now + deadline(policy),
            original: Original {
                parameter_group: state.parameter_group.clone(),
                audit_exported: state.exports_audit(),
                audit_value: state.audit_parameter.value.clone(),
            },
            created_group: None,
            copied_parameters: 0,
            rebooted: Vec::new(),
            retention_set: None,
        }
    }

    /// What changed, in words for the finding's note.
    pub fn changes(&self, state: &ClusterState) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(group) = &self.created_group {
            let mut s = format!(
                "created parameter group {group} ({})",
                state.parameter_group_family()
            );
            if self.copied_parameters > 0 {
                s.push_str(&format!(
                    " with {} parameters copied from {}",
                    self.copied_parameters, self.original.parameter_group
                ));
            }
            out.push(s);
        }
        if state.parameter_group != self.original.parameter_group {
            out.push(format!(
                "attached {} in place of {}",
                state.parameter_group, self.original.parameter_group
            ));
        }
        if self.original.audit_value.trim() != "1" && state.audit_parameter.is_enabled() {
            out.push(format!(
                "set {AUDIT_PARAMETER}=1 in {}",
                state.parameter_group
            ));
        }
        if !self.original.audit_exported && state.exports_audit() {
            out.push("enabled the audit log export to CloudWatch Logs".into());
        }
        if !self.rebooted.is_empty() {
            out.push(format!("rebooted {}", self.rebooted.join(", ")));
        }
        if let Some(days) = self.retention_set {
            out.push(format!(
                "set {} retention to {days} days",
                audit_log_group(&state.identifier)
            ));
        }
        out
    }
}

fn deadline(policy: &Remediation) -> Duration {
    Duration::minutes(i64::try_from(policy.verify_deadline_minutes).unwrap_or(60))
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassResult {
    /// Check again in `recheck_in`. `window`: waiting for the maintenance window
    /// (the verify deadline does not run meanwhile).
    Waiting {
        why: String,
        recheck_in: std::time::Duration,
        window: bool,
    },
    /// Compliant, and an audit log stream exists.
    Verified,
    /// All done but the reboot, which policy `never` leaves to people.
    RebootPending { why: String },
    /// hubtriage must not change this cluster: the finding gets a ticket.
    Refused { why: String },
}

/// One pass over a cluster being remediated. `cluster_arn` is the cluster the
/// finding names; `state` must be that very cluster's (same ARN), or nothing is
/// changed. Every call names the cluster by the finding's ARN.
pub async fn pass(
    api: &dyn FixApi,
    cluster_arn: &str,
    state: &ClusterState,
    policy: &Remediation,
    progress: &mut Progress,
    now: DateTime<Utc>,
) -> Result<PassResult, Error> {
    let recheck = std::time::Duration::from_secs(policy.recheck_seconds);
    let waiting = |why: String| PassResult::Waiting {
        why,
        recheck_in: recheck,
        window: false,
    };
    let Some(arn) = ClusterArn::parse(cluster_arn) else {
        return Ok(PassResult::Refused {
            why: format!("the cluster ARN {cluster_arn} cannot be read."),
        });
    };
    if state.arn != cluster_arn {
        tracing::warn!(
            wanted = cluster_arn,
            read = %state.arn,
            "live state is for another cluster; nothing changed"
        );
        return Ok(PassResult::Refused {
            why: format!(
                "the live state read is for {}, not {cluster_arn}.",
                state.arn
            ),
        });
    }
    let (region, account, cluster) = (arn.region, arn.account, arn.identifier);
    if state.status != "available" {
        return Ok(waiting(format!("the cluster is {}", state.status)));
    }
    let steps = match plan(state, policy) {
        Ok((steps, _)) => steps,
        Err(why) => return Ok(PassResult::Refused { why }),
    };
    let changing = |call: &str, params: String| {
        tracing::info!(cluster, account, region, call, params = %params, "changing the cluster");
    };
    let mut changed = false;

    for step in &steps {
        match step {
            Step::CreateParameterGroup {
                name,
                family,
                copy_from,
            } => {
                changing(
                    "CreateDBClusterParameterGroup",
                    format!("name={name} family={family}"),
                );
                api.create_group(region, name, family).await?;
                progress.created_group = Some(name.clone());
                if let Some(source) = copy_from {
                    let params: Vec<ParameterValue> = api
                        .user_parameters(region, source)
                        .await?
                        .into_iter()
                        .filter(|(n, _, _)| n != AUDIT_PARAMETER)
                        .collect();
                    if !params.is_empty() {
                        let names: Vec<&str> = params.iter().map(|p| p.0.as_str()).collect();
                        changing(
                            "ModifyDBClusterParameterGroup",
                            format!("group={name} copy from {source}: {}", names.join(",")),
                        );
                        api.set_parameters(region, name, &params).await?;
                    }
                    progress.copied_parameters = params.len();
                }
                changed = true;
            }
            Step::SetAuditParameter { group } => {
                changing(
                    "ModifyDBClusterParameterGroup",
                    format!("group={group} {AUDIT_PARAMETER}=1 apply=pending-reboot"),
                );
                let p = (
                    AUDIT_PARAMETER.to_string(),
                    "1".to_string(),
                    "pending-reboot".to_string(),
                );
                api.set_parameters(region, group, &[p]).await?;
                changed = true;
            }
            Step::AttachParameterGroup { group } => {
                changing(
                    "ModifyDBCluster",
                    format!("DBClusterParameterGroupName={group} ApplyImmediately=true"),
                );
                api.attach_group(region, cluster, group).await?;
                progress.deadline = now + deadline(policy);
                return Ok(waiting(format!(
                    "attached {group}; waiting for the cluster"
                )));
            }
            Step::EnableAuditExport => {
                changing(
                    "ModifyDBCluster",
                    "CloudwatchLogsExportConfiguration.EnableLogTypes=[audit]".into(),
                );
                api.enable_audit_export(region, cluster).await?;
                progress.deadline = now + deadline(policy);
                return Ok(waiting(
                    "enabled the audit log export; waiting for the cluster".into(),
                ));
            }
            Step::WaitForMaintenanceWindow { window } => {
                let w = match Window::parse(window) {
                    Ok(w) => w,
                    Err(why) => return Ok(PassResult::Refused { why }),
                };
                if !w.contains(now) {
                    let until = w.until_open(now);
                    progress.deadline = now + until + deadline(policy);
                    return Ok(PassResult::Waiting {
                        why: format!("waiting for the maintenance window {window} to reboot"),
                        recheck_in: until
                            .to_std()
                            .unwrap_or(recheck)
                            .max(std::time::Duration::from_secs(1)),
                        window: true,
                    });
                }
            }
            Step::RebootInstance { instance } => {
                // One at a time: every instance must be available before the next reboot.
                for m in &state.members {
                    let status = api.instance_status(region, &m.instance).await?;
                    if status.as_deref() != Some("available") {
                        return Ok(waiting(format!(
                            "instance {} is {}",
                            m.instance,
                            status.as_deref().unwrap_or("missing")
                        )));
                    }
                }
                changing("RebootDBInstance", format!("instance={instance}"));
                api.reboot(region, instance).await?;
                if !progress.rebooted.contains(instance) {
                    progress.rebooted.push(instance.clone());
                }
                progress.deadline = now + deadline(policy);
                return Ok(waiting(format!("rebooting {instance}")));
            }
            Step::SetLogRetention { log_group, days } => {
                // The group appears once Neptune writes audit logs; until then, later passes retry.
                if let Some(current) = api.log_group_retention(region, log_group).await? {
                    if current != Some(*days) {
                        changing(
                            "PutRetentionPolicy",
                            format!("logGroupName={log_group} retentionInDays={days}"),
                        );
                        api.put_retention(region, log_group, *days).await?;
                    }
                    progress.retention_set = Some(*days);
                }
            }
            Step::Verify => {
                if changed {
                    progress.deadline = now + deadline(policy);
                    return Ok(waiting(
                        "changed the parameter group; checking again".into(),
                    ));
                }
                let problems = state.problems();
                if !problems.is_empty() {
                    if policy.reboot == RebootPolicy::Never
                        && state.exports_audit()
                        && state.audit_parameter.is_enabled()
                    {
                        return Ok(PassResult::RebootPending {
                            why: format!("{}; reboot policy is \"never\"", problems.join("; ")),
                        });
                    }
                    return Ok(waiting(format!("verify: {}", problems.join("; "))));
                }
                let log_group = audit_log_group(cluster);
                if !api.has_log_stream(region, &log_group).await? {
                    return Ok(waiting(format!(
                        "verify: no audit log stream in {log_group} yet"
                    )));
                }
                return Ok(PassResult::Verified);
            }
        }
    }
    Ok(waiting("plan incomplete; checking again".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::sample_state;
    use crate::state::{IN_SYNC, PENDING_REBOOT};
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A fake Neptune that applies changes to a `ClusterState`, the way AWS would.
    struct FakeNeptune {
        state: Mutex<ClusterState>,
        groups: Mutex<HashMap<String, Vec<ParameterValue>>>,
        calls: Mutex<Vec<String>>,
        log_group: Mutex<Option<Option<i32>>>,
        stream: bool,
    }

    impl FakeNeptune {
        fn new(state: ClusterState) -> Self {
            FakeNeptune {
                state: Mutex::new(state),
                groups: Mutex::new(HashMap::new()),
                calls: Mutex::new(vec![]),
                log_group: Mutex::new(None),
                stream: true,
            }
        }
        fn call(&self, c: String) {
            self.calls.lock().unwrap().push(c);
        }
        fn state(&self) -> ClusterState {
            self.state.lock().unwrap().clone()
        }
        fn mutating(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl FixApi for FakeNeptune {
        async fn service_linked_role_exists(&self) -> Result<bool, Error> {
            Ok(true)
        }
        async fn create_group(&self, _: &str, name: &str, _: &str) -> Result<bool, Error> {
            self.call(format!("create {name}"));
            Ok(self
                .groups
                .lock()
                .unwrap()
                .insert(name.into(), vec![])
                .is_none())
        }
        async fn user_parameters(
            &self,
            _: &str,
            group: &str,
        ) -> Result<Vec<ParameterValue>, Error> {
            Ok(self
                .groups
                .lock()
                .unwrap()
                .get(group)
                .cloned()
                .unwrap_or_default())
        }
        async fn set_parameters(
            &self,
            _: &str,
            group: &str,
            params: &[ParameterValue],
        ) -> Result<(), Error> {
            self.call(format!(
                "set {group} {}",
                params
                    .iter()
                    .map(|p| format!("{}={}", p.0, p.1))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
            let mut s = self.state.lock().unwrap();
            if s.parameter_group == group && params.iter().any(|p| p.0 == AUDIT_PARAMETER) {
                s.audit_parameter.value = "1".into();
                for m in &mut s.members {
                    m.parameter_group_status = PENDING_REBOOT.into();
                }
            }
            self.groups
                .lock()
                .unwrap()
                .entry(group.into())
                .or_default()
                .extend(params.iter().cloned());
            Ok(())
        }
        async fn attach_group(&self, _: &str, _: &str, group: &str) -> Result<(), Error> {
            self.call(format!("attach {group}"));
            let mut s = self.state.lock().unwrap();
            s.parameter_group = group.into();
            let has = self
                .groups
                .lock()
                .unwrap()
                .get(group)
                .is_some_and(|ps| ps.iter().any(|p| p.0 == AUDIT_PARAMETER && p.1 == "1"));
            s.audit_parameter.value = if has { "1".into() } else { "0".into() };
            for m in &mut s.members {
                m.parameter_group_status = PENDING_REBOOT.into();
            }
            Ok(())
        }
        async fn enable_audit_export(&self, _: &str, _: &str) -> Result<(), Error> {
            self.call("export".into());
            self.state
                .lock()
                .unwrap()
                .exported_logs
                .push("audit".into());
            Ok(())
        }
        async fn instance_status(&self, _: &str, _: &str) -> Result<Option<String>, Error> {
            Ok(Some("available".into()))
        }
        async fn reboot(&self, _: &str, instance: &str) -> Result<(), Error> {
            self.call(format!("reboot {instance}"));
            let mut s = self.state.lock().unwrap();
            for m in &mut s.members {
                if m.instance == instance {
                    m.parameter_group_status = IN_SYNC.into();
                }
            }
            if s.is_compliant() {
                let mut group = self.log_group.lock().unwrap();
                if group.is_none() {
                    *group = Some(Some(30));
                }
            }
            Ok(())
        }
        async fn log_group_retention(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<Option<i32>>, Error> {
            Ok(*self.log_group.lock().unwrap())
        }
        async fn put_retention(&self, _: &str, _: &str, days: i32) -> Result<(), Error> {
            self.call(format!("retention {days}"));
            *self.log_group.lock().unwrap() = Some(Some(days));
            Ok(())
        }
        async fn has_log_stream(&self, _: &str, _: &str) -> Result<bool, Error> {
            Ok(self.stream && self.state.lock().unwrap().is_compliant())
        }
    }

    fn policy(reboot: RebootPolicy) -> Remediation {
        Remediation {
            mode: crate::config::Mode::Apply,
            reboot,
            log_retention_days: Some(365),
            recheck_seconds: 5,
            ..Remediation::default()
        }
    }

    /// The cluster the finding names (`sample_state`'s).
    const ARN: &str = "arn:aws:rds:us-east-1:111122223333:cluster:orders-graph";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Runs passes until one does not wait (at most 20), as re-checks would.
    async fn run(
        api: &FakeNeptune,
        policy: &Remediation,
        now: DateTime<Utc>,
    ) -> (PassResult, Progress, usize) {
        let mut progress = Progress::start(&api.state(), policy, now);
        for n in 1..=20 {
            let result = pass(api, ARN, &api.state(), policy, &mut progress, now)
                .await
                .unwrap();
            match result {
                PassResult::Waiting { window: true, .. } => return (result, progress, n),
                PassResult::Waiting { .. } => continue,
                other => return (other, progress, n),
            }
        }
        panic!("no end after 20 passes");
    }

    #[tokio::test]
    async fn default_group_is_fixed_readers_first_and_verified() {
        let api = FakeNeptune::new(sample_state());
        let (result, progress, _) = run(
            &api,
            &policy(RebootPolicy::Immediate),
            at("2026-11-25T12:00:00Z"),
        )
        .await;
        assert_eq!(result, PassResult::Verified);
        assert_eq!(
            api.mutating(),
            vec![
                "create hubtriage-audit-orders-graph",
                "set hubtriage-audit-orders-graph neptune_enable_audit_log=1",
                "attach hubtriage-audit-orders-graph",
                "export",
                "reboot orders-graph-2",
                "reboot orders-graph-1",
                "retention 365",
            ]
        );
        let changes = progress.changes(&api.state());
        assert_eq!(changes.len(), 6, "{changes:?}");
        assert!(changes[1].contains("in place of default.neptune1.3"));
        assert_eq!(changes[4], "rebooted orders-graph-2, orders-graph-1");
    }

    #[tokio::test]
    async fn a_second_run_changes_nothing() {
        let api = FakeNeptune::new(sample_state());
        let p = policy(RebootPolicy::Immediate);
        run(&api, &p, at("2026-11-25T12:00:00Z")).await;
        let before = api.mutating().len();
        let (result, _, passes) = run(&api, &p, at("2026-11-25T12:00:00Z")).await;
        assert_eq!(result, PassResult::Verified);
        assert_eq!(passes, 1);
        assert_eq!(api.mutating().len(), before, "idempotent");
    }

    #[tokio::test]
    async fn policy_never_stops_before_the_reboot() {
        let api = FakeNeptune::new(sample_state());
        let (result, _, _) = run(
            &api,
            &policy(RebootPolicy::Never),
            at("2026-11-25T12:00:00Z"),
        )
        .await;
        assert!(
            matches!(result, PassResult::RebootPending { .. }),
            "{result:?}"
        );
        assert!(!api.mutating().iter().any(|c| c.starts_with("reboot")));
    }

    #[tokio::test]
    async fn maintenance_window_gates_reboots_by_the_clock() {
        // Window sun:06:00-06:30; 2026-11-25 is a Wednesday, 2026-11-29 a Sunday.
        let api = FakeNeptune::new(sample_state());
        let p = policy(RebootPolicy::MaintenanceWindow);
        let (result, _, _) = run(&api, &p, at("2026-11-25T12:00:00Z")).await;
        match result {
            PassResult::Waiting {
                window: true,
                recheck_in,
                ..
            } => {
                assert_eq!(recheck_in.as_secs(), (3 * 24 + 18) * 3600);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !api.mutating().iter().any(|c| c.starts_with("reboot")),
            "nothing rebooted outside"
        );
        let (result, _, _) = run(&api, &p, at("2026-11-29T06:05:00Z")).await;
        assert_eq!(result, PassResult::Verified);
        assert!(api
            .mutating()
            .contains(&"reboot orders-graph-1".to_string()));
    }

    #[tokio::test]
    async fn a_busy_cluster_waits_and_a_skipped_one_is_refused() {
        let mut s = sample_state();
        s.status = "modifying".into();
        let api = FakeNeptune::new(s);
        let p = policy(RebootPolicy::Immediate);
        let mut progress = Progress::start(&api.state(), &p, at("2026-11-25T12:00:00Z"));
        let r = pass(
            &api,
            ARN,
            &api.state(),
            &p,
            &mut progress,
            at("2026-11-25T12:00:00Z"),
        )
        .await
        .unwrap();
        assert!(matches!(r, PassResult::Waiting { .. }));
        assert!(api.mutating().is_empty());

        let mut s = sample_state();
        s.tags.insert(crate::decide::SKIP_TAG.into(), "1".into());
        let api = FakeNeptune::new(s);
        let r = pass(
            &api,
            ARN,
            &api.state(),
            &p,
            &mut progress,
            at("2026-11-25T12:00:00Z"),
        )
        .await
        .unwrap();
        assert!(matches!(r, PassResult::Refused { .. }));
        assert!(api.mutating().is_empty());
    }

    #[tokio::test]
    async fn verification_waits_for_the_audit_log_stream() {
        let mut api = FakeNeptune::new(sample_state());
        api.stream = false;
        let p = policy(RebootPolicy::Immediate);
        let mut progress = Progress::start(&api.state(), &p, at("2026-11-25T12:00:00Z"));
        let mut last = None;
        for _ in 0..10 {
            last = Some(
                pass(
                    &api,
                    ARN,
                    &api.state(),
                    &p,
                    &mut progress,
                    at("2026-11-25T12:00:00Z"),
                )
                .await
                .unwrap(),
            );
        }
        match last.unwrap() {
            PassResult::Waiting { why, .. } => {
                assert!(why.contains("no audit log stream"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn state_of_another_arn_is_never_changed() {
        // A same-named cluster in another account or region: nothing is called.
        for other in [
            "arn:aws:rds:us-east-1:123456789012:cluster:orders-graph",
            "arn:aws:rds:eu-west-1:111122223333:cluster:orders-graph",
        ] {
            let mut s = sample_state();
            s.arn = other.into();
            let api = FakeNeptune::new(s);
            let p = policy(RebootPolicy::Immediate);
            let mut progress = Progress::start(&api.state(), &p, at("2026-11-25T12:00:00Z"));
            let r = pass(
                &api,
                ARN,
                &api.state(),
                &p,
                &mut progress,
                at("2026-11-25T12:00:00Z"),
            )
            .await
            .unwrap();
            assert!(matches!(r, PassResult::Refused { .. }), "{r:?}");
            assert!(api.mutating().is_empty(), "{other}: {:?}", api.mutating());
        }
    }
}
