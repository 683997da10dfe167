//! The deployment material agrees with the code: the CloudFormation rule uses
//! the one event pattern defined in `hubtriage::setup`, that pattern routes the
//! findings it should (and not others), and no IAM statement grants a wildcard
//! action.

use serde_json::{json, Value};

use hubtriage::setup::event_pattern;

const TEMPLATE: &str = include_str!("../deploy/hubtriage.yaml");
const SAMPLE: &str = include_str!("fixtures/neptune2-failed-event.json");

fn template() -> serde_yaml::Value {
    serde_yaml::from_str(TEMPLATE).expect("deploy/hubtriage.yaml is YAML")
}

fn resources_of_type<'a>(t: &'a serde_yaml::Value, kind: &str) -> Vec<&'a serde_yaml::Value> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some(kind))
        .collect()
}

/// A YAML value without CloudFormation tags, as JSON.
fn to_json(v: &serde_yaml::Value) -> Value {
    serde_json::to_value(v).expect("plain YAML converts to JSON")
}

#[test]
fn the_template_rule_uses_the_codes_event_pattern() {
    let t = template();
    let rules = resources_of_type(&t, "AWS::Events::Rule");
    assert_eq!(rules.len(), 1);
    assert_eq!(
        to_json(&rules[0]["Properties"]["EventPattern"]),
        event_pattern()
    );
}

/// EventBridge matching, for the features the pattern uses: exact values,
/// `suffix`, nested fields, arrays in the event (any element), and `$or`.
fn matches(pattern: &Value, event: &Value) -> bool {
    let Some(fields) = pattern.as_object() else {
        return false;
    };
    fields.iter().all(|(key, want)| {
        if key == "$or" {
            return want
                .as_array()
                .is_some_and(|alts| alts.iter().any(|alt| matches(alt, event)));
        }
        let have = event.get(key).unwrap_or(&Value::Null);
        field_matches(want, have)
    })
}

fn field_matches(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (_, Value::Array(items)) => items.iter().any(|item| field_matches(want, item)),
        (Value::Object(_), Value::Object(_)) => matches(want, have),
        (Value::Array(options), leaf) => options.iter().any(|o| match o {
            Value::Object(m) if m.contains_key("suffix") => leaf
                .as_str()
                .zip(m["suffix"].as_str())
                .is_some_and(|(l, s)| l.ends_with(s)),
            Value::Object(m) if m.contains_key("prefix") => leaf
                .as_str()
                .zip(m["prefix"].as_str())
                .is_some_and(|(l, p)| l.starts_with(p)),
            literal => literal == leaf,
        }),
        _ => false,
    }
}

fn sample() -> Value {
    serde_json::from_str(SAMPLE).unwrap()
}

#[test]
fn the_pattern_routes_both_neptune2_flavours_failed_and_passed() {
    let p = event_pattern();
    assert!(matches(&p, &sample()), "consolidated control finding");

    let mut standard = sample();
    let f = &mut standard["detail"]["findings"][0];
    f["GeneratorId"] = json!("aws-foundational-security-best-practices/v/1.0.0/Neptune.2");
    f["ProductFields"]["ControlId"] = json!("Neptune.2");
    f["Compliance"]
        .as_object_mut()
        .unwrap()
        .remove("SecurityControlId");
    assert!(matches(&p, &standard), "standard-specific finding");

    let mut passed = sample();
    passed["detail"]["findings"][0]["Compliance"]["Status"] = json!("PASSED");
    assert!(matches(&p, &passed), "PASSED findings sync resolutions");
}

#[test]
fn the_pattern_leaves_other_controls_products_and_custom_actions_out() {
    let p = event_pattern();
    let mut other_control = sample();
    other_control["detail"]["findings"][0]["Compliance"]["SecurityControlId"] = json!("Neptune.1");
    assert!(!matches(&p, &other_control));

    let mut other_product = sample();
    other_product["detail"]["findings"][0]["ProductArn"] =
        json!("arn:aws:securityhub:us-east-1::product/aws/guardduty");
    assert!(!matches(&p, &other_product));

    let mut imported_by_a_member = sample();
    imported_by_a_member["detail"]["findings"][0]["ProductArn"] =
        json!("arn:aws:securityhub:us-east-1:444455556666:product/444455556666/default");
    assert!(!matches(&p, &imported_by_a_member));

    let mut custom_action = sample();
    custom_action["detail-type"] = json!("Security Hub Findings - Custom Action");
    assert!(
        !matches(&p, &custom_action),
        "custom actions need a rule of their own"
    );

    let mut not_available = sample();
    not_available["detail"]["findings"][0]["Compliance"]["Status"] = json!("NOT_AVAILABLE");
    assert!(!matches(&p, &not_available));
}

fn statements(policy: &serde_yaml::Value) -> Vec<&serde_yaml::Value> {
    match &policy["Statement"] {
        serde_yaml::Value::Sequence(s) => s.iter().collect(),
        other => vec![other],
    }
}

#[test]
fn no_iam_statement_grants_a_wildcard_action() {
    let t = template();
    let mut checked = 0;
    for role in resources_of_type(&t, "AWS::IAM::Role") {
        assert!(
            role["Properties"]["ManagedPolicyArns"].is_null(),
            "managed policies are not allowed: their actions are not visible here"
        );
        for policy in role["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for st in statements(&policy["PolicyDocument"]) {
                let actions: Vec<&str> = match &st["Action"] {
                    serde_yaml::Value::String(a) => vec![a.as_str()],
                    serde_yaml::Value::Sequence(a) => a.iter().filter_map(|x| x.as_str()).collect(),
                    other => panic!("unexpected Action {other:?}"),
                };
                for a in actions {
                    checked += 1;
                    assert!(
                        a != "*" && !a.ends_with(":*") && !a.contains('*'),
                        "wildcard action {a}"
                    );
                }
            }
        }
    }
    assert!(checked >= 20, "the roles' actions were found ({checked})");
}

#[test]
fn the_task_role_grants_what_the_code_calls() {
    let text = TEMPLATE;
    for action in [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
        "rds:DescribeDBClusters",
        "rds:DescribeDBClusterParameters",
        "rds:ListTagsForResource",
        "rds:DescribeDBInstances",
        "rds:CreateDBClusterParameterGroup",
        "rds:ModifyDBClusterParameterGroup",
        "rds:ModifyDBCluster",
        "rds:RebootDBInstance",
        "securityhub:BatchUpdateFindings",
        "securityhub:GetFindings",
        "events:PutEvents",
        "iam:GetRole",
        "logs:DescribeLogGroups",
        "logs:DescribeLogStreams",
        "logs:PutRetentionPolicy",
    ] {
        assert!(text.contains(action), "the task role lacks {action}");
    }
}
