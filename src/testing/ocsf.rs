//! The OCSF twin of an ASFF event, for tests that compare the two formats.

/// The OCSF "Findings Imported V2" event of the same check as the ASFF
/// event `asff` (the new Security Hub re-publishes CSPM control findings):
/// the mapping AWS documents, for tests that compare the two formats.
pub(crate) fn ocsf_twin(asff: &str) -> String {
    use serde_json::{json, Value};
    let event: Value = serde_json::from_str(asff).unwrap();
    let f = &event["detail"]["findings"][0];
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let (status_id, status) = match f["Workflow"]["Status"].as_str() {
        Some("NOTIFIED") => (2, "In Progress"),
        Some("SUPPRESSED") => (3, "Suppressed"),
        Some("RESOLVED") => (4, "Resolved"),
        _ => (1, "New"),
    };
    let (compliance_id, compliance) = match f["Compliance"]["Status"].as_str() {
        Some("PASSED") => (1, "Pass"),
        Some("WARNING") => (2, "Warning"),
        _ => (3, "Fail"),
    };
    let severity_id = match f["Severity"]["Label"].as_str() {
        Some("INFORMATIONAL") => 1,
        Some("LOW") => 2,
        Some("HIGH") => 4,
        Some("CRITICAL") => 5,
        _ => 3,
    };
    let resources: Vec<Value> = f["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            json!({
                "type": if r["Type"] == "AwsRdsDbCluster" { "AWS::RDS::DBCluster" } else { "Other" },
                "uid": "cluster-7QK3ZP2XWMNB4RT6YHJ5LCVDSA",
                "uid_alt": r["Id"],
                "region": r["Region"],
            })
        })
        .collect();
    let mut finding = json!({
        "activity_id": if f["RecordState"] == "ARCHIVED" { 3 } else { 1 },
        "class_uid": 2003,
        "cloud": {"account": {"uid": f["AwsAccountId"]}, "provider": "AWS", "region": f["Region"]},
        "compliance": {
            "control": f["Compliance"]["SecurityControlId"],
            "status": compliance,
            "status_id": compliance_id,
        },
        "finding_info": {
            "uid": f["Id"],
            "title": f["Title"],
            "modified_time_dt": f["UpdatedAt"],
            "analytic": {"name": f["GeneratorId"], "type": "Rule", "type_id": 1},
        },
        "metadata": {
            "product": {"name": "Security Hub", "uid": text(&f["ProductArn"]).replace("::product/", "::productv2/")},
            "uid": format!("{:064x}", fxhash(&text(&f["Id"]))),
            "version": "1.6.0",
        },
        "resources": resources,
        "severity_id": severity_id,
        "status": status,
        "status_id": status_id,
    });
    if let Some(note) = f["Note"]["Text"].as_str() {
        // What hubtriage keeps in UserDefinedFields rides in its V2 comment.
        let fields: std::collections::BTreeMap<String, String> = f["UserDefinedFields"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            .unwrap_or_default();
        finding["comment"] = if f["Note"]["UpdatedBy"] == crate::marks::UPDATED_BY {
            crate::marks::comment::write(&fields, note, 512).into()
        } else {
            note.into()
        };
    }
    json!({
        "version": "0",
        "detail-type": crate::finding::DETAIL_TYPE_V2,
        "source": "aws.securityhub",
        "account": event["account"],
        "region": event["region"],
        "detail": {"findings": [finding]},
    })
    .to_string()
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
