//! The deployment material agrees with the code: the CloudFormation rule uses
//! the one event pattern defined in `hubtriage::setup`, that pattern routes the
//! findings it should (and not others), and no IAM statement grants a wildcard
//! action.

use serde_json::{json, Value};

use hubtriage::setup::event_pattern;

const TEMPLATE: &str = include_str!("../../deploy/hubtriage.yaml");
const SAMPLE: &str = include_str!("../fixtures/neptune2-failed-event.json");

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

fn v2_sample() -> Value {
    serde_json::from_str(include_str!("../fixtures/neptune2-v2-event.json")).unwrap()
}

#[test]
fn the_pattern_routes_v2_findings_of_neptune2_from_security_hub_failed_and_passed() {
    let p = event_pattern();
    assert!(matches(&p, &v2_sample()), "V2 Fail");
    let mut passed = v2_sample();
    passed["detail"]["findings"][0]["compliance"]["status"] = json!("Pass");
    assert!(matches(&p, &passed), "V2 Pass");

    let mut other_control = v2_sample();
    other_control["detail"]["findings"][0]["compliance"]["control"] = json!("EC2.1");
    assert!(!matches(&p, &other_control), "V2 of another control");
    let mut other_product = v2_sample();
    other_product["detail"]["findings"][0]["metadata"]["product"]["uid"] =
        json!("arn:aws:securityhub:us-east-1::productv2/aws/guardduty");
    assert!(!matches(&p, &other_product), "V2 of another product");
    let mut asff_product = v2_sample();
    asff_product["detail"]["findings"][0]["metadata"]["product"]["uid"] =
        json!("arn:aws:securityhub:us-east-1::product/aws/securityhub");
    assert!(!matches(&p, &asff_product), "V2 events carry productv2");
    let mut unknown = v2_sample();
    unknown["detail"]["findings"][0]["compliance"]["status"] = json!("Unknown");
    assert!(!matches(&p, &unknown));
    // The V2 shape under the ASFF detail-type, and the reverse, match nothing.
    let mut mixed = v2_sample();
    mixed["detail-type"] = json!("Security Hub Findings - Imported");
    assert!(!matches(&p, &mixed));
    let mut mixed = sample();
    mixed["detail-type"] = json!("Findings Imported V2");
    assert!(!matches(&p, &mixed));
}

#[test]
fn the_pattern_leaves_other_controls_products_and_custom_actions_out() {
    let p = event_pattern();
    let mut other_control = sample();
    other_control["detail"]["findings"][0]["Compliance"]["SecurityControlId"] = json!("EC2.1");
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

/// A policy's statements; a conditional one (`!If [cond, statement, NoValue]`)
/// counts as its statement.
fn statements(policy: &serde_yaml::Value) -> Vec<&serde_yaml::Value> {
    let all: Vec<&serde_yaml::Value> = match &policy["Statement"] {
        serde_yaml::Value::Sequence(s) => s.iter().collect(),
        other => vec![other],
    };
    all.into_iter()
        .map(|st| match st {
            serde_yaml::Value::Tagged(t) if t.tag == "!If" => &t.value[1],
            st => st,
        })
        .collect()
}

const MEMBER_TEMPLATE: &str = include_str!("../../deploy/member-role.yaml");

/// Every action of every inline policy of every role in `t`.
fn role_actions(t: &serde_yaml::Value) -> Vec<String> {
    let mut out = Vec::new();
    for role in resources_of_type(t, "AWS::IAM::Role") {
        for policy in role["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for st in statements(&policy["PolicyDocument"]) {
                match &st["Action"] {
                    serde_yaml::Value::String(a) => out.push(a.clone()),
                    serde_yaml::Value::Sequence(a) => {
                        out.extend(a.iter().filter_map(|x| x.as_str()).map(str::to_string))
                    }
                    other => panic!("unexpected Action {other:?}"),
                }
            }
        }
    }
    out
}

#[test]
fn no_iam_statement_grants_a_wildcard_action() {
    let member: serde_yaml::Value = serde_yaml::from_str(MEMBER_TEMPLATE).expect("YAML");
    for a in role_actions(&member) {
        assert!(!a.contains('*'), "wildcard action {a} in member-role.yaml");
    }
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
        "dynamodb:UpdateItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
    ] {
        assert!(text.contains(action), "the task role lacks {action}");
    }
}

/// The actions the task role's statement `sid` grants.
fn statement_actions(sid: &str) -> Vec<String> {
    let t = template();
    for role in resources_of_type(&t, "AWS::IAM::Role") {
        for policy in role["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for st in statements(&policy["PolicyDocument"]) {
                if st["Sid"].as_str() == Some(sid) {
                    return st["Action"]
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_string))
                        .collect();
                }
            }
        }
    }
    panic!("no statement {sid} in the template");
}

/// The DynamoDB calls a file makes, as IAM actions.
fn dynamodb_calls(path: &str) -> Vec<String> {
    let code = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap();
    let mut calls: Vec<String> = [
        (".get_item()", "dynamodb:GetItem"),
        (".put_item()", "dynamodb:PutItem"),
        (".update_item()", "dynamodb:UpdateItem"),
        (".delete_item()", "dynamodb:DeleteItem"),
        (".query()", "dynamodb:Query"),
        (".scan()", "dynamodb:Scan"),
        (".batch_write_item()", "dynamodb:BatchWriteItem"),
    ]
    .into_iter()
    .filter(|(call, _)| code.contains(call))
    .map(|(_, action)| action.to_string())
    .collect();
    calls.sort();
    calls
}

#[test]
fn the_template_makes_the_coordination_table_and_hands_it_to_the_task() {
    let t = template();
    let tables = resources_of_type(&t, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 2, "the coordination table and the journal");
    let coordination = tables
        .iter()
        .find(|t| t["Properties"]["GlobalSecondaryIndexes"].is_null())
        .unwrap();
    let p = to_json(&coordination["Properties"]);
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        p["KeySchema"],
        serde_json::json!([{"AttributeName": "pk", "KeyType": "HASH"}])
    );
    assert_eq!(
        p["AttributeDefinitions"],
        serde_json::json!([{"AttributeName": "pk", "AttributeType": "S"}])
    );
    assert_eq!(
        p["TimeToLiveSpecification"],
        serde_json::json!({"AttributeName": "ttl", "Enabled": true})
    );
    assert!(TEMPLATE.contains("HUBTRIAGE__COORDINATION__TABLE"));
    // Every DynamoDB call the code makes on the table is granted, and no other.
    let mut granted = statement_actions("CoordinationTable");
    granted.sort();
    assert_eq!(granted, dynamodb_calls("src/coordination/dynamo.rs"));
}

#[test]
fn the_template_keeps_the_journal_with_point_in_time_recovery_and_the_keys_history_reads() {
    let t = template();
    let tables = resources_of_type(&t, "AWS::DynamoDB::Table");
    let journal = tables
        .iter()
        .find(|t| !t["Properties"]["GlobalSecondaryIndexes"].is_null())
        .expect("the journal table");
    assert_eq!(journal["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(journal["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let p = to_json(&journal["Properties"]);
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        p["PointInTimeRecoverySpecification"],
        serde_json::json!({"PointInTimeRecoveryEnabled": true})
    );
    assert_eq!(
        p["TimeToLiveSpecification"],
        serde_json::json!({"AttributeName": "ttl", "Enabled": true})
    );
    assert_eq!(
        p["KeySchema"],
        serde_json::json!([{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    );
    let indexes: Vec<(String, String)> = p["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["IndexName"].as_str().unwrap().to_string(),
                i["KeySchema"][0]["AttributeName"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        (hubtriage::journal::BY_ACCOUNT, "account"),
        (hubtriage::journal::BY_RESOURCE, "resource_name"),
        (hubtriage::journal::OPEN_CHANGES, "open"),
    ]
    .iter()
    .map(|(i, k)| (i.to_string(), k.to_string()))
    .collect();
    assert_eq!(indexes, want);
    assert!(TEMPLATE.contains("HUBTRIAGE__JOURNAL__TABLE"));
    // Exactly the calls the journal's code makes: nothing missing, nothing extra.
    let mut granted = statement_actions("JournalTable");
    granted.sort();
    let mut called = dynamodb_calls("src/journal/dynamo.rs");
    called.extend(dynamodb_calls("src/journal/writer.rs"));
    called.sort();
    assert_eq!(granted, called);
}

/// The dashboard's body with CloudFormation's `!Sub` placeholders filled in.
fn dashboard_body(t: &serde_yaml::Value) -> Value {
    let dashboards = resources_of_type(t, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1, "one dashboard, made by the template");
    let serde_yaml::Value::Tagged(sub) = &dashboards[0]["Properties"]["DashboardBody"] else {
        panic!("DashboardBody is a !Sub");
    };
    assert_eq!(sub.tag, "!Sub");
    let mut body = sub.value.as_str().expect("a !Sub string").to_string();
    for (placeholder, value) in [
        ("${AWS::Region}", "eu-west-1"),
        ("${MetricsNamespace}", "hubtriage"),
        ("${FindingsQueue.QueueName}", "findings"),
        ("${DeadLetterQueue.QueueName}", "findings-dlq"),
    ] {
        body = body.replace(placeholder, value);
    }
    assert!(!body.contains("${"), "an unknown placeholder in {body}");
    serde_json::from_str(&body).expect("the dashboard body is JSON")
}

#[test]
fn the_dashboard_shows_a_storm_from_metrics_hubtriage_writes() {
    let t = template();
    let body = dashboard_body(&t);
    let widgets = body["widgets"].as_array().expect("widgets");
    let emitted = hubtriage::metrics::emf_names();
    let mut shown = Vec::new();
    for w in widgets {
        for row in w["properties"]["metrics"].as_array().expect("metrics") {
            let row = row.as_array().expect("a metric row");
            let (Some(namespace), Some(name)) =
                (row[0].as_str(), row.get(1).and_then(Value::as_str))
            else {
                continue; // an expression row
            };
            if namespace == "hubtriage" {
                assert!(
                    emitted.contains(&name),
                    "{name} is not a metric hubtriage writes"
                );
            }
            shown.push(format!("{namespace}/{name}"));
        }
    }
    for needed in [
        "hubtriage/DecidedRemediate",
        "hubtriage/DecidedTicket",
        "hubtriage/DecidedSuppress",
        "hubtriage/DecidedResolve",
        "hubtriage/Recorded",
        "AWS/SQS/ApproximateNumberOfMessagesVisible",
        "AWS/SQS/ApproximateAgeOfOldestMessage",
        "hubtriage/UpdateCalls",
        "hubtriage/Throttles",
        "hubtriage/RecordLatency",
        "hubtriage/RemediationsStarted",
        "hubtriage/TicketsOpened",
    ] {
        assert!(
            shown.iter().any(|s| s == needed),
            "{needed} is not on the dashboard"
        );
    }
    let text = body.to_string();
    assert!(
        text.contains("findings-dlq"),
        "the DLQ's depth is on the dashboard"
    );
    assert!(text.contains("\"p50\"") && text.contains("\"p99\""));
    // Nothing in the code makes dashboards: the template is their one source.
    assert!(!include_str!("../../src/setup.rs").contains("Dashboard"));
}

/// The AWS calls the code makes with a member account's credentials: every
/// `Error::from_sdk("Neptune" | "CloudWatch Logs" | "IAM", "<Operation>", ..)`
/// in src/, as IAM actions.
fn member_calls_in_the_code() -> std::collections::BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("src/ is readable").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(&path).expect("a source file"));
            }
        }
    }
    let mut sources = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut sources,
    );
    let mut calls = std::collections::BTreeSet::new();
    for text in sources {
        for chunk in text.split(".aws(").skip(1) {
            let quoted: Vec<&str> = chunk.split('"').collect();
            // .aws(\n "Service", "Operation", ...
            let (Some(service), Some(op)) = (quoted.get(1), quoted.get(3)) else {
                continue;
            };
            let prefix = match *service {
                "Neptune" => "rds",
                "CloudWatch Logs" => "logs",
                "IAM" => "iam",
                _ => continue,
            };
            calls.insert(format!("{prefix}:{op}"));
        }
    }
    calls
}

#[test]
fn the_member_policy_grants_exactly_what_the_code_calls_in_a_member_account() {
    let member: serde_yaml::Value = serde_yaml::from_str(MEMBER_TEMPLATE).expect("YAML");
    let granted: std::collections::BTreeSet<String> = role_actions(&member).into_iter().collect();
    let called = member_calls_in_the_code();
    assert!(
        called.len() >= 10,
        "the code's calls were found: {called:?}"
    );
    assert_eq!(
        granted, called,
        "deploy/member-role.yaml and the code differ"
    );
    // Both ways with the control registry too: every action a control's fix
    // needs is granted, and every remediation grant is one a control needs.
    let registry: std::collections::BTreeSet<String> = hubtriage::control::iam_actions()
        .into_iter()
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = registry.difference(&granted).collect();
    assert!(missing.is_empty(), "the member role lacks {missing:?}");
    let reads = [
        "rds:DescribeDBClusters",
        "rds:ListTagsForResource",
        "rds:DescribeDBClusterSnapshots",
        "rds:DescribeDBClusterSnapshotAttributes",
    ];
    // `hubtriage undo`'s own calls, granted once each.
    let undo = hubtriage::undo::IAM_ACTIONS;
    for action in undo {
        assert!(
            granted.contains(*action),
            "the member role lacks {action} (undo)"
        );
        assert!(
            TEMPLATE.contains(action),
            "the task role lacks {action} (undo)"
        );
    }
    let extra: Vec<&String> = granted
        .difference(&registry)
        .filter(|a| !reads.contains(&a.as_str()) && !undo.contains(&a.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "the member role grants {extra:?}, which no control's fix and no live-state read needs"
    );
}

#[test]
fn the_task_role_grants_every_action_the_controls_need() {
    for action in hubtriage::control::iam_actions() {
        assert!(TEMPLATE.contains(action), "the task role lacks {action}");
    }
    for read in [
        "rds:DescribeDBClusterSnapshots",
        "rds:DescribeDBClusterSnapshotAttributes",
    ] {
        assert!(TEMPLATE.contains(read), "the task role lacks {read}");
    }
}

#[test]
fn the_member_role_trusts_only_the_task_role_with_the_external_id() {
    let member: serde_yaml::Value = serde_yaml::from_str(MEMBER_TEMPLATE).expect("YAML");
    let roles = resources_of_type(&member, "AWS::IAM::Role");
    assert_eq!(roles.len(), 1);
    let trust = statements(&roles[0]["Properties"]["AssumeRolePolicyDocument"]);
    assert_eq!(trust.len(), 1);
    let st = trust[0];
    assert_eq!(st["Effect"].as_str(), Some("Allow"));
    assert_eq!(st["Action"].as_str(), Some("sts:AssumeRole"));
    let principal = &st["Principal"]["AWS"];
    let serde_yaml::Value::Tagged(r) = principal else {
        panic!("the principal is !Ref HubtriageTaskRoleArn, found {principal:?}");
    };
    assert_eq!(
        (r.tag.to_string().as_str(), r.value.as_str()),
        ("!Ref", Some("HubtriageTaskRoleArn"))
    );
    let external = &st["Condition"]["StringEquals"]["sts:ExternalId"];
    assert!(
        matches!(external, serde_yaml::Value::Tagged(t) if t.value.as_str() == Some("ExternalId"))
    );
    assert_eq!(
        member["Parameters"]["ExternalId"]["NoEcho"].as_bool(),
        Some(true)
    );
}

#[test]
fn the_task_role_may_assume_only_the_member_role_by_name() {
    let t = template();
    let mut grants = Vec::new();
    for role in resources_of_type(&t, "AWS::IAM::Role") {
        for policy in role["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for st in statements(&policy["PolicyDocument"]) {
                if st["Action"].as_str() == Some("sts:AssumeRole") {
                    grants.push(st["Resource"].clone());
                }
            }
        }
    }
    assert_eq!(grants.len(), 1, "one statement grants sts:AssumeRole");
    let serde_yaml::Value::Tagged(sub) = &grants[0] else {
        panic!("a !Sub resource");
    };
    assert_eq!(
        sub.value.as_str(),
        Some("arn:${AWS::Partition}:iam::*:role/${MemberRoleName}")
    );
}
