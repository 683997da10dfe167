//! Steps 1 to 5 of a decision: what the finding, the config and the reach
//! decide alone, before any live state is read.

use super::{deciding_control, AccountReach, Action, Decision};
use crate::config::Config;
use crate::control::{ids, Kind};
use crate::finding::{ClusterArn, Compliance, Finding, Format, RecordState};

/// Steps 1–5: what can be decided from the finding, the config and the reach
/// alone. `Some` means live state need not (and must not) be read.
pub fn screen(f: &Finding, config: &Config, reach: &AccountReach) -> Option<Decision> {
    let ignore = |reason: String| Some(Decision::new(f, Action::Ignore, reason));

    // 1. Not ours, or not trusted.
    if let Some(why) = untrusted(f) {
        return ignore(why);
    }

    // 2. Nothing to fix.
    if f.record_state == RecordState::Archived {
        return ignore("The finding is archived.".into());
    }
    match &f.compliance_status {
        Some(Compliance::Failed) => {}
        Some(status) => return ignore(format!("The compliance status is {status}, not FAILED.")),
        None => return ignore("The finding has no compliance status.".into()),
    }

    // 3. A person decided.
    if f.workflow_status.is_closed() {
        return ignore(format!(
            "The workflow status is {}: a person already decided.",
            f.workflow_status
        ));
    }

    // 4. Out of scope, and 5. no way into the account.
    out_of_reach(f, config, reach).and_then(ignore)
}

/// Step 1: why the finding is not one of a control hubtriage triages, on a
/// resource it can trust, if so.
pub fn untrusted(f: &Finding) -> Option<String> {
    let Some(control) = deciding_control(f) else {
        return Some(not_triaged(f.control.as_deref()));
    };
    let resource_arn = match control.kind() {
        Kind::Cluster => f.cluster_arn.as_deref(),
        Kind::ClusterSnapshot => f.snapshot_arn.as_deref(),
    };
    let Some(resource_arn) = resource_arn else {
        if let (Kind::Cluster, Some(resource_id)) = (control.kind(), &f.cluster_resource_id) {
            return Some(format!(
                "The finding names cluster resource id {resource_id}, and no Neptune cluster in account {} in {} has it.",
                f.account, f.region
            ));
        }
        return Some(format!(
            "The finding names no {} resource.",
            control.kind().asff_type()
        ));
    };
    if !is_security_hub_product(&f.product_arn, &f.region, &f.format) {
        let field = match f.format {
            Format::Asff => "ProductArn",
            Format::Ocsf { .. } => "metadata.product.uid",
        };
        return Some(format!(
            "The finding is not trusted: its {field} {} is not Security Hub's own product in {}.",
            f.product_arn, f.region
        ));
    }
    if let Some((account, region)) = id_place(&f.id) {
        if account != f.account || region != f.region {
            return Some(format!(
                "The finding is not trusted: its Id names account {account} in {region}, but it says it comes from account {} in {}.",
                f.account, f.region
            ));
        }
    }
    let (arn, noun) = match control.kind() {
        Kind::Cluster => (ClusterArn::parse(resource_arn), "cluster"),
        Kind::ClusterSnapshot => (ClusterArn::parse_snapshot(resource_arn), "cluster snapshot"),
    };
    let Some(arn) = arn else {
        return Some(format!(
            "The finding is not trusted: its resource {resource_arn} is not a {noun} ARN."
        ));
    };
    if arn.account != f.account || arn.region != f.region {
        return Some(format!(
            "The finding is not trusted: its {noun} ARN names account {} in {}, but the finding comes from account {} in {}.",
            arn.account, arn.region, f.account, f.region
        ));
    }
    None
}

/// Why a finding's control is not triaged: another service's, an RDS
/// control no Neptune control matches, or none at all.
fn not_triaged(control: Option<&str>) -> String {
    let triaged = crate::control::all();
    let (first, last) = (
        triaged.first().map_or("", |c| c.id()),
        triaged.last().map_or("", |c| c.id()),
    );
    match control {
        None => "The finding names no control hubtriage triages.".into(),
        Some("") => "The finding names an empty control id.".into(),
        Some(id) if shown(id) != id => format!(
            "The finding is for {}, which hubtriage does not triage (it triages {first} to {last}; the id holds characters no control id has, shown escaped).",
            shown(id)
        ),
        Some(id) => match ids::rds(crate::finding::normalize_control_id(id)) {
            Some(rds) if rds.neptune.is_none() => format!("The finding is for {id}: {}.", rds.why_none),
            _ => format!(
                "The finding is for {id}, which hubtriage does not triage (it triages {first} to {last})."
            ),
        },
    }
}

/// An id as a reason may show it: printable ASCII as it is, anything else
/// (a look-alike letter, an invisible character) escaped as `\u{…}`, so that
/// `Nеptune.4` with a Cyrillic `е` never reads as `Neptune.4`.
pub fn shown(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c.to_string()
            } else {
                format!("\\u{{{:x}}}", u32::from(c))
            }
        })
        .collect()
}

/// The (account, region) a Security Hub finding `Id` names, when it is an ARN
/// (`arn:<partition>:securityhub:<region>:<account>:...`), as Security Hub's
/// own findings' ids are.
fn id_place(id: &str) -> Option<(&str, &str)> {
    let mut parts = id.splitn(6, ':');
    let (arn, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account) = (parts.next()?, parts.next()?);
    (arn == "arn" && service == "securityhub").then_some((account, region))
}

/// Steps 4 and 5: why hubtriage must not touch the finding's account and
/// region, if so: outside `[scope]`, or an account it has no way into (its
/// cluster must not be looked up with our own credentials: a same-named
/// cluster in our account is another cluster).
pub fn out_of_reach(f: &Finding, config: &Config, reach: &AccountReach) -> Option<String> {
    let partition = f
        .cluster_arn
        .as_deref()
        .and_then(ClusterArn::parse)
        .or_else(|| {
            f.snapshot_arn
                .as_deref()
                .and_then(ClusterArn::parse_snapshot)
        })
        .map(|a| a.partition);
    if let Some(p) = partition.filter(|p| *p != reach.partition) {
        let noun = if f.cluster_arn.is_some() {
            "cluster"
        } else {
            "snapshot"
        };
        return Some(format!(
            "The finding is not trusted: its {noun} is in partition {p}, and hubtriage runs in {}.",
            reach.partition
        ));
    }
    if !config.scope.allows_account(&f.account) {
        return Some(format!(
            "Account {} is outside [scope] accounts.",
            f.account
        ));
    }
    if !config.scope.allows_region(&f.region) {
        return Some(format!("Region {} is outside [scope] regions.", f.region));
    }
    reach.refuses(&f.account)
}

/// Security Hub's own product in `region`: `…::product/aws/securityhub` for
/// ASFF findings, `…::productv2/aws/securityhub` for OCSF ones.
fn is_security_hub_product(product_arn: &str, region: &str, format: &Format) -> bool {
    let product = match format {
        Format::Asff => "product/aws/securityhub",
        Format::Ocsf { .. } => "productv2/aws/securityhub",
    };
    let parts: Vec<&str> = product_arn.split(':').collect();
    matches!(
        parts.as_slice(),
        ["arn", partition, "securityhub", r, "", p]
            if partition.starts_with("aws") && *r == region && *p == product
    )
}
