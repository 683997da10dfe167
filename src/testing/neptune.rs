//! Neptune, CloudWatch Logs and IAM in memory, changed the way AWS would (`FixApi`).

use super::*;

/// A fake Neptune that applies changes to a `ClusterState`, the way AWS would.
pub(crate) struct FakeNeptune {
    pub(crate) state: Mutex<ClusterState>,
    pub(crate) groups: Mutex<HashMap<String, Vec<ParameterValue>>>,
    pub(crate) calls: Mutex<Vec<String>>,
    pub(crate) log_group: Mutex<Option<Option<i32>>>,
    pub(crate) stream: bool,
    /// The next reboot fails with this error (taken once).
    pub(crate) reboot_error: Mutex<Option<Error>>,
    /// A cluster snapshot, for snapshot controls.
    pub(crate) snapshot: Mutex<Option<crate::state::SnapshotState>>,
}

impl FakeNeptune {
    pub(crate) fn new(state: ClusterState) -> Self {
        FakeNeptune {
            state: Mutex::new(state),
            groups: Mutex::new(HashMap::new()),
            calls: Mutex::new(vec![]),
            log_group: Mutex::new(None),
            stream: true,
            reboot_error: Mutex::new(None),
            snapshot: Mutex::new(None),
        }
    }
    pub(crate) fn call(&self, c: String) {
        lock(&self.calls).push(c);
    }
    pub(crate) fn state(&self) -> ClusterState {
        self.state.lock().unwrap().clone()
    }
    pub(crate) fn mutating(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

/// One fake for every account.
impl crate::act::remediate::FixApis for Arc<FakeNeptune> {
    fn at(&self, _account: &str) -> Arc<dyn FixApi> {
        self.clone()
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
    async fn user_parameters(&self, _: &str, group: &str) -> Result<Vec<ParameterValue>, Error> {
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
                .map(|p| format!("{}={}", p.name, p.value))
                .collect::<Vec<_>>()
                .join(",")
        ));
        let mut s = self.state.lock().unwrap();
        if s.parameter_group == group && params.iter().any(|p| p.name == AUDIT_PARAMETER) {
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
        let has = self.groups.lock().unwrap().get(group).is_some_and(|ps| {
            ps.iter()
                .any(|p| p.name == AUDIT_PARAMETER && p.value == "1")
        });
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
        if let Some(e) = lock(&self.reboot_error).take() {
            return Err(e);
        }
        self.call(format!("reboot {instance}"));
        let mut s = self.state.lock().unwrap();
        for m in &mut s.members {
            if m.instance == instance {
                m.parameter_group_status = IN_SYNC.into();
            }
        }
        if s.audit_log_problems().is_empty() {
            let mut group = self.log_group.lock().unwrap();
            if group.is_none() {
                *group = Some(Some(30));
            }
        }
        Ok(())
    }
    async fn log_group_retention(&self, _: &str, _: &str) -> Result<Option<Option<i32>>, Error> {
        Ok(*self.log_group.lock().unwrap())
    }
    async fn put_retention(&self, _: &str, _: &str, days: i32) -> Result<(), Error> {
        self.call(format!("retention {days}"));
        *self.log_group.lock().unwrap() = Some(Some(days));
        Ok(())
    }
    async fn has_log_stream(&self, _: &str, _: &str) -> Result<bool, Error> {
        Ok(self.stream && self.state.lock().unwrap().audit_log_problems().is_empty())
    }

    async fn modify_cluster(
        &self,
        _: &str,
        cluster: &str,
        setting: crate::control::ClusterSetting,
        value: crate::control::SettingValue,
    ) -> Result<(), Error> {
        use crate::control::ClusterSetting as S;
        self.call(format!("modify {cluster} {}={value}", setting.as_str()));
        let wrong = || Error::other("Neptune", "ModifyDBCluster", cluster, "wrong value type");
        let mut state = lock(&self.state);
        let settings = &mut state.settings;
        match setting {
            S::DeletionProtection => {
                settings.deletion_protection = value.flag().ok_or_else(wrong)?
            }
            S::BackupRetentionPeriod => {
                settings.backup_retention_period = value.days().ok_or_else(wrong)?
            }
            S::CopyTagsToSnapshot => {
                settings.copy_tags_to_snapshot = value.flag().ok_or_else(wrong)?
            }
            S::EnableIamDatabaseAuthentication => {
                settings.iam_database_authentication = value.flag().ok_or_else(wrong)?
            }
        }
        Ok(())
    }
    async fn cluster_settings(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<crate::state::ClusterSettings>, Error> {
        Ok(Some(lock(&self.state).settings.clone()))
    }
    async fn make_snapshot_private(&self, _: &str, snapshot: &str) -> Result<(), Error> {
        self.call(format!("private {snapshot}"));
        if let Some(s) = lock(&self.snapshot).as_mut() {
            s.restore.retain(|v| v != crate::state::PUBLIC);
        }
        Ok(())
    }
    async fn snapshot_restore(&self, _: &str, _: &str) -> Result<Option<Vec<String>>, Error> {
        Ok(lock(&self.snapshot).as_ref().map(|s| s.restore.clone()))
    }
    async fn disable_audit_export(&self, _: &str, _: &str) -> Result<(), Error> {
        self.call("export off".into());
        lock(&self.state).exported_logs.retain(|l| l != "audit");
        Ok(())
    }
    async fn make_snapshot_public(&self, _: &str, snapshot: &str) -> Result<(), Error> {
        self.call(format!("public {snapshot}"));
        if let Some(s) = lock(&self.snapshot).as_mut() {
            s.restore.push(crate::state::PUBLIC.into());
        }
        Ok(())
    }
    async fn delete_retention(&self, _: &str, _: &str) -> Result<(), Error> {
        self.call("retention off".into());
        *lock(&self.log_group) = Some(None);
        Ok(())
    }
    async fn tag(&self, _: &str, arn: &str, key: &str, value: &str) -> Result<(), Error> {
        self.call(format!("tag {arn} {key}"));
        let mut state = lock(&self.state);
        if state.arn == arn {
            state.tags.insert(key.into(), value.into());
        }
        if let Some(s) = lock(&self.snapshot).as_mut().filter(|s| s.arn == arn) {
            s.tags.insert(key.into(), value.into());
        }
        Ok(())
    }
}

/// The fake's cluster and snapshot as live state (`undo` reads them).
#[async_trait]
impl ClusterReader for FakeNeptune {
    async fn cluster_state(&self, arn: &str) -> Result<Option<ClusterState>, Error> {
        Ok(Some(self.state()).filter(|s| s.arn == arn))
    }

    async fn snapshot_state(
        &self,
        arn: &str,
    ) -> Result<Option<crate::state::SnapshotState>, Error> {
        Ok(lock(&self.snapshot).clone().filter(|s| s.arn == arn))
    }

    async fn cluster_arn_by_resource_id(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Option<String>, Error> {
        Ok(None)
    }
}
