//! Parsing real and malformed events: every error names its JSON path.

use super::*;

const SAMPLE: &str = include_str!("../../tests/fixtures/neptune2-failed-event.json");

fn sample() -> Value {
    serde_json::from_str(SAMPLE).unwrap()
}

fn parse_value(v: &Value) -> Result<Vec<Finding>, ParseError> {
    parse_event(v.to_string().as_bytes())
}

#[test]
fn parses_the_sample_event() {
    let findings = parse_event(SAMPLE.as_bytes()).unwrap();
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f.control.as_deref(), Some("Neptune.2"));
    assert_eq!(f.account, "111122223333");
    assert_eq!(f.region, "us-east-1");
    assert_eq!(f.cluster_id(), Some("orders-graph"));
    assert_eq!(
        f.compliance_status.as_ref().map(|c| c.as_str()),
        Some("FAILED")
    );
    assert_eq!(f.workflow_status, Workflow::New);
    assert_eq!(f.record_state, RecordState::Active);
    assert_eq!(f.severity_label.as_deref(), Some("MEDIUM"));
}

#[test]
fn missing_resources_names_the_path() {
    let mut v = sample();
    v["detail"]["findings"][0]
        .as_object_mut()
        .unwrap()
        .remove("Resources");
    assert_eq!(
        parse_value(&v).unwrap_err().to_string(),
        "detail.findings[0].Resources: missing"
    );
}

#[test]
fn wrong_type_names_the_path_and_types() {
    let mut v = sample();
    v["detail"]["findings"][0]["Resources"][0]["Id"] = Value::from(7);
    assert_eq!(
        parse_value(&v).unwrap_err().to_string(),
        "detail.findings[0].Resources[0].Id: expected a string, found a number"
    );
}

#[test]
fn malformed_json_is_an_error() {
    assert!(matches!(
        parse_event(b"{not json"),
        Err(ParseError::NotJson(_))
    ));
}

#[test]
fn other_sources_and_detail_types_are_rejected() {
    let mut v = sample();
    v["source"] = Value::from("aws.guardduty");
    assert!(parse_value(&v)
        .unwrap_err()
        .to_string()
        .starts_with("source: expected"));
    let mut v = sample();
    v["detail-type"] = Value::from("Security Hub Insight Results");
    assert!(parse_value(&v)
        .unwrap_err()
        .to_string()
        .starts_with("detail-type: expected"));
    let mut v = sample();
    v["detail-type"] = Value::from(DETAIL_TYPE_CUSTOM_ACTION);
    assert_eq!(parse_value(&v).unwrap().len(), 1);
}

#[test]
fn standard_specific_findings_are_recognised() {
    let mut v = sample();
    let f = &mut v["detail"]["findings"][0];
    f["Compliance"]
        .as_object_mut()
        .unwrap()
        .remove("SecurityControlId");
    f["GeneratorId"] = Value::from("aws-foundational-security-best-practices/v/1.0.0/Neptune.2");
    assert_eq!(
        parse_value(&v).unwrap()[0].control.as_deref(),
        Some("Neptune.2")
    );

    let mut v = sample();
    let f = &mut v["detail"]["findings"][0];
    f["Compliance"]
        .as_object_mut()
        .unwrap()
        .remove("SecurityControlId");
    f["GeneratorId"] = Value::from("something-else");
    f["ProductFields"]["ControlId"] = Value::from("Neptune.2");
    assert_eq!(
        parse_value(&v).unwrap()[0].control.as_deref(),
        Some("Neptune.2")
    );

    // A generator id's last part names a control only in a control id's shape.
    for (generator, control) in [
        ("cis-aws-foundations-benchmark/v/1.2.0/1.1", None),
        (
            "aws-foundational-security-best-practices/v/1.0.0/EC2.1",
            Some("EC2.1"),
        ),
        (
            "arn:aws:securityhub:::ruleset/x/rule/CT.Neptune.7",
            Some("Neptune.7"),
        ),
        ("x/Neptune.", None),
        ("x/.4", None),
        ("Neptune.4", None),
    ] {
        assert_eq!(
            super::control_of(None, None, generator).as_deref(),
            control,
            "{generator}"
        );
    }

    let mut v = sample();
    v["detail"]["findings"][0]["Compliance"]["SecurityControlId"] = Value::from("Neptune.1");
    v["detail"]["findings"][0]["GeneratorId"] = Value::from("security-control/Neptune.1");
    let f = &parse_value(&v).unwrap()[0];
    assert_ne!(f.control.as_deref(), Some("Neptune.2"));
    assert_eq!(f.control.as_deref(), Some("Neptune.1"));
}

#[test]
fn first_cluster_resource_wins_and_details_are_not_needed() {
    let mut v = sample();
    let resources = serde_json::json!([
        {"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:111122223333:instance/i-1"},
        {"Type": "AwsRdsDbCluster", "Id": "arn:aws:rds:us-east-1:111122223333:cluster:first"},
        {"Type": "AwsRdsDbCluster", "Id": "arn:aws:rds:us-east-1:111122223333:cluster:second"}
    ]);
    v["detail"]["findings"][0]["Resources"] = resources;
    assert_eq!(parse_value(&v).unwrap()[0].cluster_id(), Some("first"));
}

#[test]
fn several_findings_and_legacy_workflow_state() {
    let mut v = sample();
    let mut second = v["detail"]["findings"][0].clone();
    second["Id"] = Value::from("second");
    second.as_object_mut().unwrap().remove("Workflow");
    second["WorkflowState"] = Value::from("RESOLVED");
    v["detail"]["findings"].as_array_mut().unwrap().push(second);
    let findings = parse_value(&v).unwrap();
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[1].workflow_status, Workflow::Resolved);
}

#[test]
fn region_falls_back_to_the_event() {
    let mut v = sample();
    v["detail"]["findings"][0]
        .as_object_mut()
        .unwrap()
        .remove("Region");
    assert_eq!(parse_value(&v).unwrap()[0].region, "us-east-1");
}

#[test]
fn cluster_arn_parts() {
    let arn = ClusterArn::parse("arn:aws-us-gov:rds:us-gov-west-1:111122223333:cluster:g").unwrap();
    assert_eq!(arn.partition, "aws-us-gov");
    assert_eq!(arn.identifier, "g");
    assert!(ClusterArn::parse("arn:aws:rds:us-east-1:111122223333:db:g").is_none());
    assert!(ClusterArn::parse("nonsense").is_none());
}
