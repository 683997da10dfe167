//! The Security Hub Neptune controls, one module each, behind one small
//! interface ([`Control`]): the resource it checks, the problems it sees in
//! live state (none: compliant), its plan, its safety class, the manual fix a
//! ticket shows, and the IAM actions its fix needs. Decide, the remediation
//! driver, notes, tickets, metrics, `setup`'s event pattern and the IAM
//! policies read this registry ([`all`], [`by_id`]); the ids findings use are
//! in [`ids`].
//!
//! Pure: no I/O and no clock, like the decide step that uses it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::finding::normalize_control_id;
use crate::state::LiveResource;

pub mod change;
pub mod iac;
pub mod ids;
pub mod neptune1;
pub mod neptune2;
pub mod neptune3;
pub mod neptune4;
pub mod neptune5;
pub mod neptune6;
pub mod neptune7;
pub mod neptune8;
pub mod neptune9;
pub mod report;
pub(crate) mod setting;
pub mod table;

pub use setting::{ClusterSetting, SettingValue};

/// The tag that keeps hubtriage from changing a resource (any value).
pub const SKIP_TAG: &str = "hubtriage:skip";

/// What a control checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A DB cluster (`AwsRdsDbCluster`, `AWS::RDS::DBCluster`).
    Cluster,
    /// A DB cluster snapshot (`AwsRdsDbClusterSnapshot`, `AWS::RDS::DBClusterSnapshot`).
    ClusterSnapshot,
}

impl Kind {
    /// The ASFF resource type of a finding of this kind.
    pub fn asff_type(self) -> &'static str {
        match self {
            Kind::Cluster => "AwsRdsDbCluster",
            Kind::ClusterSnapshot => "AwsRdsDbClusterSnapshot",
        }
    }

    /// In words: "cluster", "cluster snapshot".
    pub fn noun(self) -> &'static str {
        match self {
            Kind::Cluster => "cluster",
            Kind::ClusterSnapshot => "cluster snapshot",
        }
    }
}

/// How far hubtriage may fix a control on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Safety {
    /// A `remediate` rule (or default) fixes it.
    Auto,
    /// Only a `remediate` rule whose `controls` names it fixes it; otherwise
    /// a ticket.
    OptIn,
    /// Never fixed in place: always a ticket with the manual fix.
    TicketOnly,
}

impl Safety {
    pub fn as_str(self) -> &'static str {
        match self {
            Safety::Auto => "auto",
            Safety::OptIn => "opt-in",
            Safety::TicketOnly => "ticket only",
        }
    }
}

/// One step of a remediation plan, in the order it must run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// The resource is on its way back to `available` (a backup, a
    /// modification, maintenance, ...): the remediation waits for it first.
    WaitForAvailable {
        status: String,
    },
    /// Create `<prefix><cluster>`; with `copy_from`, copy that group's user-set parameters.
    CreateParameterGroup {
        name: String,
        family: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        copy_from: Option<String>,
    },
    SetAuditParameter {
        group: String,
    },
    AttachParameterGroup {
        group: String,
    },
    EnableAuditExport,
    WaitForMaintenanceWindow {
        window: String,
    },
    RebootInstance {
        instance: String,
    },
    SetLogRetention {
        log_group: String,
        days: i32,
    },
    /// ModifyDBCluster with one setting, as the API names it
    /// (`DeletionProtection`, `BackupRetentionPeriod`, ...); applied at once.
    ModifyCluster {
        setting: ClusterSetting,
        value: SettingValue,
    },
    /// ModifyDBClusterSnapshotAttribute: `all` removed from `restore` (the
    /// accounts named there keep their access).
    MakeSnapshotPrivate {
        snapshot: String,
    },
    Verify,
}

/// A remediation plan and a sentence to add to the decision's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub note: Option<String>,
}

/// The resource a ticket's manual fix names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub account: &'a str,
    pub region: &'a str,
    /// The cluster's identifier (a snapshot's: the cluster it was taken of, when known).
    pub cluster: &'a str,
    /// The snapshot's identifier, for snapshot controls.
    pub snapshot: Option<&'a str>,
}

/// The parameters a finding carries for its control: name → values.
pub type Parameters = BTreeMap<String, Vec<String>>;

static NO_PARAMETERS: Parameters = BTreeMap::new();

/// What a control judges a resource by, besides its live state: the config
/// (`[controls."<id>"]`, `[remediation]`) and the parameters the finding
/// carries (Security Hub's custom control parameters, which its check used).
#[derive(Debug, Clone, Copy)]
pub struct Criteria<'a> {
    pub config: &'a Config,
    pub parameters: &'a Parameters,
}

impl<'a> Criteria<'a> {
    pub fn new(config: &'a Config, parameters: &'a Parameters) -> Self {
        Criteria { config, parameters }
    }

    /// The config alone (no finding: `check-config`, the README's table).
    pub fn of_config(config: &'a Config) -> Self {
        Criteria {
            config,
            parameters: &NO_PARAMETERS,
        }
    }

    /// The first value of the finding's parameter `name`, if it carries one.
    pub fn parameter(&self, name: &str) -> Option<&'a str> {
        self.parameters
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    }
}

/// One Security Hub Neptune control.
pub trait Control: Send + Sync {
    /// `Neptune.4`.
    fn id(&self) -> &'static str;
    /// Security Hub's title.
    fn title(&self) -> &'static str;
    /// What is wrong, after the resource's name in a ticket's title: "has no
    /// deletion protection".
    fn failing(&self) -> &'static str;
    fn kind(&self) -> Kind;
    fn safety(&self) -> Safety;
    /// What fails in live state, in words that do not name the resource
    /// (findings with the same problems share one note); empty: compliant.
    fn problems(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> Vec<String>;
    /// Why a compliant resource's finding is resolved (after "Live state is compliant: ").
    fn compliant(&self, criteria: Criteria<'_>) -> String;
    /// The steps still needed, in order, `verify` last; `Err` says why
    /// hubtriage must not change the resource (the decision becomes a ticket).
    fn plan(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> Result<Plan, String>;
    /// Why a `remediate` decision becomes a ticket (opt-in without a rule
    /// naming it, or ticket only); empty for `auto` controls.
    fn not_automatic(&self) -> &'static str;
    /// The fix a person makes, with the resource's identifiers.
    fn manual_fix(&self, target: &Target<'_>) -> Vec<String>;
    /// What the fix calls (ticket-only controls: none), as IAM actions.
    fn iam_actions(&self) -> &'static [&'static str];
    /// When live state passes, in a few words (`hubtriage controls`, the
    /// README's table): "`DeletionProtection`".
    fn passes_when(&self) -> &'static str;
    /// The fix, in a few words (check-config, README): `ModifyDBCluster DeletionProtection=true`.
    fn fix_summary(&self) -> &'static str;
    /// What a verified fix's note says was seen.
    fn verified(&self, live: LiveResource<'_>, criteria: Criteria<'_>) -> String;
    /// What a person running hubtriage should know of how this finding's
    /// criteria were read (the finding's parameter and the config differ);
    /// logged once per text.
    fn warnings(&self, _criteria: Criteria<'_>) -> Vec<String> {
        Vec::new()
    }
    /// The log group whose stream proves the fix works, when the fix is a
    /// log to publish (Neptune.2: `/aws/neptune/<cluster>/audit`); `verify`
    /// then waits for a stream there. `None`: reading the resource again is
    /// the verification.
    fn proof_log_group(&self, _cluster: &str) -> Option<String> {
        None
    }
    /// Whether the fix needs the RDS service-linked role (Neptune publishes
    /// logs through it); without the role the remediation becomes a ticket.
    fn needs_rds_service_linked_role(&self) -> bool {
        false
    }
    /// The `[controls."<id>"]` keys this control takes (others are refused).
    fn config_keys(&self) -> &'static [&'static str] {
        &[]
    }
    /// What its `[controls."<id>"]` settings make of it, for check-config
    /// ("at least 14 days"); `None` without settings.
    fn settings_summary(&self, _config: &Config) -> Option<String> {
        None
    }
    /// The fields of the saved AWS CLI outputs `explain` reads for this
    /// control (describe-db-clusters' `DeletionProtection`, a snapshot's
    /// `restore` attribute, ...): a saved output that lacks one is refused,
    /// never read as false.
    fn reads(&self) -> &'static [&'static str] {
        &[]
    }
    /// The fix as the change to make in a CloudFormation stack or a
    /// Terraform configuration that owns the resource; `None` when no
    /// property holds the setting.
    fn stack_change(
        &self,
        _live: LiveResource<'_>,
        _criteria: Criteria<'_>,
    ) -> Option<iac::StackChange> {
        None
    }
}

/// Every control hubtriage triages, in order: the registry. A control is
/// its module above and one line here.
static REGISTRY: &[&dyn Control] = &[
    &neptune1::CONTROL,
    &neptune2::CONTROL,
    &neptune3::CONTROL,
    &neptune4::CONTROL,
    &neptune5::CONTROL,
    &neptune6::CONTROL,
    &neptune7::CONTROL,
    &neptune8::CONTROL,
    &neptune9::CONTROL,
];

/// Every control, in the registry's order (in this crate's unit tests, then
/// the test-only controls the running test added: [`add_for_this_test`]).
pub fn all() -> Vec<&'static dyn Control> {
    let mut controls = REGISTRY.to_vec();
    added_by_test(&mut controls);
    controls
}

#[cfg(not(test))]
fn added_by_test(_: &mut Vec<&'static dyn Control>) {}

#[cfg(test)]
fn added_by_test(controls: &mut Vec<&'static dyn Control>) {
    ADDED.with(|added| controls.extend(added.borrow().iter().copied()));
}

#[cfg(test)]
thread_local! {
    static ADDED: std::cell::RefCell<Vec<&'static dyn Control>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Adds `control` to the registry for the test running on this thread (a
/// `#[tokio::test]` runs its tasks there too) until the guard is dropped:
/// how a test shows a control defined in one file flows everywhere.
#[cfg(test)]
pub(crate) fn add_for_this_test(control: &'static dyn Control) -> AddedForTest {
    ADDED.with(|added| added.borrow_mut().push(control));
    AddedForTest
}

/// Removes the controls [`add_for_this_test`] added when dropped.
#[cfg(test)]
pub(crate) struct AddedForTest;

#[cfg(test)]
impl Drop for AddedForTest {
    fn drop(&mut self) {
        ADDED.with(|added| added.borrow_mut().clear());
    }
}

/// The control `id` names (`Neptune.4`, `CT.Neptune.4`).
pub fn by_id(id: &str) -> Option<&'static dyn Control> {
    let id = normalize_control_id(id);
    all().iter().copied().find(|c| c.id() == id)
}

/// The control a decision, a re-check or a ticket names; one that names none
/// (or one hubtriage no longer has) was written when hubtriage triaged
/// Neptune.2 alone, and is Neptune.2's.
pub fn named_or_legacy(id: Option<&str>) -> &'static dyn Control {
    id.and_then(by_id).unwrap_or(&neptune2::CONTROL)
}

/// The control that decides a finding of `id`: a Neptune control, or the
/// Neptune control an RDS control is decided as.
pub fn deciding(id: &str) -> Option<&'static dyn Control> {
    let id = normalize_control_id(id);
    by_id(id).or_else(|| ids::rds(id).and_then(|r| r.neptune).and_then(by_id))
}

/// Every IAM action a remediation of any control needs, sorted, once each.
pub fn iam_actions() -> Vec<&'static str> {
    let mut actions: Vec<&str> = all()
        .iter()
        .flat_map(|c| c.iam_actions().iter().copied())
        .collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}

/// The config's control ids and settings, checked against the registry:
/// every `[controls."<id>"]`, `[[rule]] controls` and `[[suppress]]
/// controls` names a control hubtriage triages, and each `[controls."<id>"]`
/// table holds only keys its control takes. `Err`: (key, message), as a
/// config error names them. Every command that loads a config runs it.
pub fn check_settings(config: &Config) -> Result<(), (String, String)> {
    let unknown = |id: &str| {
        format!(
            "unknown control {:?}; expected one of {}",
            id,
            ids::triaged().join(", ")
        )
    };
    let rules = config.rule.iter().map(|r| ("rule", &r.controls));
    let suppressions = config.suppress.iter().map(|s| ("suppress", &s.controls));
    let lists = rules.enumerate().chain(suppressions.enumerate());
    for (i, (table, controls)) in lists {
        if let Some(id) = controls.iter().flatten().find(|id| !ids::is_triaged(id)) {
            return Err((format!("{table}[{i}].controls"), unknown(id)));
        }
    }
    for (key, table) in &config.controls.0 {
        let Some(control) = all().into_iter().find(|c| c.id().eq_ignore_ascii_case(key)) else {
            return Err((format!("controls.\"{key}\""), unknown(key)));
        };
        let (id, takes) = (control.id(), control.config_keys());
        if let Some(setting) = table.keys().into_iter().find(|k| !takes.contains(k)) {
            return Err((
                format!("controls.\"{key}\".{setting}"),
                format!(
                    "{id} has no such setting (it takes {})",
                    if takes.is_empty() {
                        "none".to_string()
                    } else {
                        takes.join(", ")
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// `Err` when the resource is tagged [`SKIP_TAG`].
pub fn not_skipped(live: LiveResource<'_>) -> Result<(), String> {
    if live.tags().contains_key(SKIP_TAG) {
        let noun = match live {
            LiveResource::Cluster(_) => "cluster",
            LiveResource::Snapshot(_) => "snapshot",
        };
        return Err(format!("the {noun} is tagged {SKIP_TAG}."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_has_every_neptune_control_once() {
        let listed: Vec<&str> = all().iter().map(|c| c.id()).collect();
        let mut once = listed.clone();
        once.sort_unstable();
        once.dedup();
        assert_eq!(once.len(), listed.len(), "an id twice: {listed:?}");
        assert_eq!(listed.first(), Some(&"Neptune.1"));
        assert_eq!(listed.last(), Some(&"Neptune.9"));
        assert_eq!(deciding("RDS.7").map(|c| c.id()), Some("Neptune.4"));
        assert_eq!(deciding("CT.Neptune.5").map(|c| c.id()), Some("Neptune.5"));
        assert!(deciding("RDS.2").is_none());
        for c in all() {
            assert_eq!(
                c.iam_actions().is_empty(),
                c.safety() == Safety::TicketOnly,
                "{}: only ticket-only controls call nothing",
                c.id()
            );
            assert_eq!(
                c.not_automatic().is_empty(),
                c.safety() == Safety::Auto,
                "{}",
                c.id()
            );
        }
    }
}
