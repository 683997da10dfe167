//! `hubtriage explain` never fights Security Hub, the stack that owns a
//! cluster, or the database's state: Neptune.5 decides with the stricter of
//! the config's minimum and the finding's own `minimumBackupRetentionPeriod`
//! (ASFF and OCSF alike) and never resolves a finding its parameter fails; a
//! cluster on its way back to `available` is waited for, a stopped one is
//! ticketed, one being deleted ignored; a stack-tagged cluster's fix is a
//! ticket carrying the change to make in the stack.

use serde_json::{json, Value};

use crate::explain_controls::{clusters, event, Flavour, Inputs, REMEDIATE};

/// A Neptune.5 finding carrying `minimumBackupRetentionPeriod` = `days`.
fn neptune5(flavour: Flavour, days: &str) -> Value {
    let mut e = event("Neptune.5", flavour);
    let f = &mut e["detail"]["findings"][0];
    match flavour {
        Flavour::Ocsf => {
            f["compliance"]["control_parameters"] =
                json!([{"name": "minimumBackupRetentionPeriod", "value": days}])
        }
        _ => {
            f["Compliance"]["SecurityControlParameters"] =
                json!([{"Name": "minimumBackupRetentionPeriod", "Value": [days]}])
        }
    }
    e
}

fn keeping(days: i64) -> Value {
    clusters(move |c| c["BackupRetentionPeriod"] = json!(days))
}

fn first_step(d: &Value) -> Value {
    d["plan"][0].clone()
}

#[test]
fn neptune5_decides_with_the_stricter_of_the_config_and_the_findings_parameter() {
    let inputs = Inputs::new();
    for flavour in [Flavour::Consolidated, Flavour::Ocsf] {
        // The finding asks for 14 days, the config for 7: 14.
        let d = inputs.explain(REMEDIATE, &neptune5(flavour, "14"), &keeping(10), None);
        assert_eq!(d["action"], "remediate", "{flavour:?}: {d}");
        assert_eq!(
            first_step(&d),
            json!({"op": "modify_cluster", "setting": "BackupRetentionPeriod", "value": 14}),
            "{flavour:?}: {d}"
        );
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.contains("fewer than 14 (the finding's minimumBackupRetentionPeriod)"),
            "{reason}"
        );
        // The finding asks for 7, the config for 21: 21.
        let config = format!("{REMEDIATE}[controls.\"Neptune.5\"]\nmin_retention_days = 21\n");
        let d = inputs.explain(&config, &neptune5(flavour, "7"), &keeping(10), None);
        assert_eq!(
            first_step(&d),
            json!({"op": "modify_cluster", "setting": "BackupRetentionPeriod", "value": 21}),
            "{flavour:?}: {d}"
        );
        assert!(
            d["reason"].as_str().unwrap().contains("min_retention_days"),
            "{d}"
        );
        // Compliant by the config (7), failing by the finding's parameter
        // (14): never resolved.
        let ticket = "[default]\naction = \"ticket\"\n";
        let d = inputs.explain(ticket, &neptune5(flavour, "14"), &keeping(10), None);
        assert_eq!(d["action"], "ticket", "{flavour:?}: {d}");
        // Keeping what the finding asks: resolved, saying whose minimum held.
        let d = inputs.explain(ticket, &neptune5(flavour, "14"), &keeping(14), None);
        assert_eq!(d["action"], "resolve", "{flavour:?}: {d}");
        // A parameter that cannot be read is not a pass, and not a fix.
        let d = inputs.explain(
            REMEDIATE,
            &neptune5(flavour, "two weeks"),
            &keeping(30),
            None,
        );
        assert_eq!(d["action"], "ticket", "{flavour:?}: {d}");
        assert!(
            d["reason"].as_str().unwrap().contains("\"two weeks\""),
            "{d}"
        );
    }
}

/// The fixture's cluster, failing Neptune.4, in `status`.
fn unprotected(status: &'static str) -> Value {
    clusters(move |c| {
        c["DeletionProtection"] = json!(false);
        c["Status"] = json!(status);
    })
}

#[test]
fn a_busy_cluster_is_waited_for_a_stopped_one_ticketed_a_deleted_one_ignored() {
    let inputs = Inputs::new();
    for flavour in [Flavour::Consolidated, Flavour::Ocsf] {
        let e = event("Neptune.4", flavour);
        let d = inputs.explain(REMEDIATE, &e, &unprotected("backing-up"), None);
        assert_eq!(d["action"], "remediate", "{d}");
        assert_eq!(
            first_step(&d),
            json!({"op": "wait_for_available", "status": "backing-up"})
        );
        assert_eq!(d["plan"][1]["op"], "modify_cluster");
        let d = inputs.explain(REMEDIATE, &e, &unprotected("stopped"), None);
        assert_eq!(d["action"], "ticket", "{d}");
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.contains("the cluster is stopped") && reason.contains("after seven days"),
            "{reason}"
        );
        let d = inputs.explain(REMEDIATE, &e, &unprotected("deleting"), None);
        assert_eq!(d["action"], "ignore", "{d}");
        assert!(d["reason"].as_str().unwrap().contains("being deleted"));
    }
}

#[test]
fn a_stack_owned_clusters_fix_is_a_ticket_with_the_change_to_make_in_the_stack() {
    let inputs = Inputs::new();
    let e = event("Neptune.4", Flavour::Consolidated);
    let stack = [
        ("aws:cloudformation:stack-name", "orders-prod"),
        ("env", "prod"),
    ];
    let d = inputs.explain_with(REMEDIATE, &e, &unprotected("available"), None, &stack);
    assert_eq!(d["action"], "ticket", "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("CloudFormation stack orders-prod"),
        "{reason}"
    );
    assert!(reason.contains("DeletionProtection: true"), "{reason}");
    assert!(reason.contains("deletion_protection = true"), "{reason}");
    let fix = d["fix"].to_string();
    assert!(fix.contains("--stack-name orders-prod"), "{fix}");
    // Told to remediate anyway, it does.
    let anyway = "[remediation]\nmode = \"apply\"\niac_managed = \"remediate\"\n[default]\naction = \"remediate\"\n";
    let d = inputs.explain_with(anyway, &e, &unprotected("available"), None, &stack);
    assert_eq!(d["action"], "remediate", "{d}");
    // A tag the config names marks another tool's.
    let tagged = "[remediation]\nmode = \"apply\"\niac_tags = [\"managed-by=terraform\"]\n[default]\naction = \"remediate\"\n";
    let d = inputs.explain_with(
        tagged,
        &e,
        &unprotected("available"),
        None,
        &[("managed-by", "terraform")],
    );
    assert_eq!(d["action"], "ticket", "{d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .contains("managed-by=terraform"),
        "{d}"
    );
}
