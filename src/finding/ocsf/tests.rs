//! OCSF events: the sample, every mapping, errors naming their paths, and
//! hubtriage's comment read back.

use serde_json::Value;

use super::*;
use crate::finding::parse_event;

const SAMPLE: &str = include_str!("../../../tests/fixtures/neptune2-v2-event.json");

fn sample() -> Value {
    serde_json::from_str(SAMPLE).unwrap()
}

fn parse(v: &Value) -> Result<Finding, ParseError> {
    parse_event(v.to_string().as_bytes()).map(|mut f| f.remove(0))
}

fn finding(v: &mut Value) -> &mut Value {
    &mut v["detail"]["findings"][0]
}

#[test]
fn the_sample_reads_as_the_asff_finding_of_the_same_check_would() {
    let f = parse(&sample()).unwrap();
    assert_eq!(f.control.as_deref(), Some("Neptune.2"));
    assert_eq!(
        f.id,
        "arn:aws:securityhub:us-east-1:123456789012:security-control/Neptune.2/finding/3f0c9a1e-7b2d-4c55-9e8a-5d1f2b6c7a90"
    );
    assert_eq!(
        f.product_arn,
        "arn:aws:securityhub:us-east-1::productv2/aws/securityhub"
    );
    assert_eq!(
        f.format,
        Format::Ocsf {
            metadata_uid: "9f3b6c1d2e4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e".into()
        }
    );
    assert_eq!(
        (f.account.as_str(), f.region.as_str()),
        ("123456789012", "us-east-1")
    );
    assert_eq!(
        f.cluster_arn.as_deref(),
        Some("arn:aws:rds:us-east-1:123456789012:cluster:neptune-prod-graph")
    );
    assert_eq!(f.cluster_id(), Some("neptune-prod-graph"));
    assert_eq!(
        f.compliance_status.as_ref().map(|c| c.as_str()),
        Some("FAILED")
    );
    assert_eq!(f.workflow_status, Workflow::New);
    assert_eq!(f.record_state, RecordState::Active);
    assert_eq!(f.severity_label.as_deref(), Some("MEDIUM"));
    assert_eq!(f.updated_at.as_deref(), Some("2026-03-10T08:15:42.120Z"));
    assert!(f.note.is_none() && f.user_defined_fields.is_empty());
}

#[test]
fn status_compliance_and_severity_ids_map_to_asff_words() {
    for (status_id, workflow) in [
        (1, Workflow::New),
        (2, Workflow::Notified),
        (3, Workflow::Suppressed),
        (4, Workflow::Resolved),
        (5, Workflow::Other("ARCHIVED".into())),
        (99, Workflow::Other("OTHER(99)".into())),
    ] {
        let mut v = sample();
        finding(&mut v)["status_id"] = status_id.into();
        let f = parse(&v).unwrap();
        assert_eq!(f.workflow_status, workflow, "{status_id}");
        assert_eq!(f.record_state == RecordState::Archived, status_id == 5);
    }
    for (id, name, want) in [
        (Some(1), "Fail", "PASSED"),
        (Some(3), "Pass", "FAILED"),
        (None, "Pass", "PASSED"),
        (None, "Fail", "FAILED"),
        (Some(2), "Warning", "WARNING"),
    ] {
        let mut v = sample();
        let c = &mut finding(&mut v)["compliance"];
        c["status"] = name.into();
        match id {
            Some(id) => c["status_id"] = id.into(),
            None => {
                c.as_object_mut().unwrap().remove("status_id");
            }
        }
        assert_eq!(
            parse(&v)
                .unwrap()
                .compliance_status
                .as_ref()
                .map(|c| c.as_str()),
            Some(want)
        );
    }
    for (id, label) in [
        (1, "INFORMATIONAL"),
        (2, "LOW"),
        (4, "HIGH"),
        (5, "CRITICAL"),
    ] {
        let mut v = sample();
        finding(&mut v)["severity_id"] = id.into();
        assert_eq!(parse(&v).unwrap().severity_label.as_deref(), Some(label));
    }
    let mut v = sample();
    finding(&mut v)["activity_id"] = 3.into();
    assert_eq!(
        parse(&v).unwrap().record_state,
        RecordState::Archived,
        "a Close"
    );
}

#[test]
fn the_cluster_is_found_by_arn_in_either_uid_or_by_resource_id() {
    let arn = "arn:aws:rds:us-east-1:123456789012:cluster:neptune-prod-graph";
    // The ARN in uid, the resource id in uid_alt; and the ASFF type name.
    let mut v = sample();
    let r = &mut finding(&mut v)["resources"][0];
    r["uid"] = arn.into();
    r["uid_alt"] = "cluster-7QK3ZP2XWMNB4RT6YHJ5LCVDSA".into();
    r["type"] = "AwsRdsDbCluster".into();
    let f = parse(&v).unwrap();
    assert_eq!(f.cluster_arn.as_deref(), Some(arn));
    // Only the resource id: the pipeline looks the cluster up by it.
    let mut v = sample();
    finding(&mut v)["resources"][0]
        .as_object_mut()
        .unwrap()
        .remove("uid_alt");
    let f = parse(&v).unwrap();
    assert_eq!(f.cluster_arn, None);
    assert_eq!(
        f.cluster_resource_id.as_deref(),
        Some("cluster-7QK3ZP2XWMNB4RT6YHJ5LCVDSA")
    );
    // Another resource type only: no cluster.
    let mut v = sample();
    finding(&mut v)["resources"][0]["type"] = "AWS::RDS::DBInstance".into();
    let f = parse(&v).unwrap();
    assert_eq!((f.cluster_arn, f.cluster_resource_id), (None, None));
}

#[test]
fn errors_name_the_ocsf_path() {
    type Break = fn(&mut Value);
    let cases: [(&str, Break); 7] = [
        ("detail.findings[0].finding_info: missing", |f| {
            f.as_object_mut().unwrap().remove("finding_info");
        }),
        ("detail.findings[0].metadata.uid: missing", |f| {
            f["metadata"].as_object_mut().unwrap().remove("uid");
        }),
        (
            "detail.findings[0].metadata.product.uid: expected a string, found a number",
            |f| {
                f["metadata"]["product"]["uid"] = 7.into();
            },
        ),
        ("detail.findings[0].cloud.account.uid: missing", |f| {
            f["cloud"]["account"] = serde_json::json!({});
        }),
        (
            "detail.findings[0].status_id: expected an integer, found a string",
            |f| {
                f["status_id"] = "New".into();
            },
        ),
        ("detail.findings[0].resources: missing", |f| {
            f.as_object_mut().unwrap().remove("resources");
        }),
        (
            "detail.findings[0].resources[0].type: expected a string, found an array",
            |f| {
                f["resources"][0]["type"] = serde_json::json!([]);
            },
        ),
    ];
    for (want, break_it) in cases {
        let mut v = sample();
        break_it(finding(&mut v));
        assert_eq!(parse(&v).unwrap_err().to_string(), want);
    }
    let mut v = sample();
    finding(&mut v)["compliance"]["control"] = "Neptune.2\u{1b}[31m".into();
    assert!(parse(&v)
        .unwrap_err()
        .to_string()
        .starts_with("detail.findings[0].compliance.control: expected at most 64 characters"));
}

#[test]
fn hubtriages_comment_carries_its_fields_and_a_persons_does_not() {
    let mut fields = BTreeMap::new();
    fields.insert("hubtriage:action".to_string(), "ticket".to_string());
    fields.insert("hubtriage:ticket".to_string(), "SEC-12".to_string());
    fields.insert(
        "hubtriage:rule".to_string(),
        "prod needs; a ticket=yes]".to_string(),
    );
    let text = comment::write(&fields, "hubtriage opened ticket SEC-12.", 512);
    assert!(
        text.starts_with("hubtriage[action=ticket;rule=prod%20needs%3B"),
        "{text}"
    );
    assert_eq!(comment::fields(&text), Some(fields.clone()));
    let mut v = sample();
    finding(&mut v)["comment"] = text.clone().into();
    finding(&mut v)["status_id"] = 2.into();
    let f = parse(&v).unwrap();
    assert_eq!(f.user_defined_fields, fields);
    assert_eq!(
        f.note.as_ref().map(|n| n.updated_by.as_str()),
        Some(UPDATED_BY)
    );
    assert_eq!(f.workflow_status, Workflow::Notified);

    finding(&mut v)["comment"] = "Accepted until the migration, see CHG-9".into();
    let f = parse(&v).unwrap();
    assert!(f.user_defined_fields.is_empty());
    assert_eq!(f.note.map(|n| n.updated_by), Some(String::new()));
    assert_eq!(comment::fields("hubtriage[action=%Z] x"), None);
    let long = comment::write(&fields, &"x".repeat(600), 512);
    assert_eq!(long.chars().count(), 512);
}
