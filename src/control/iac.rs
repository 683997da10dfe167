//! Resources owned by infrastructure as code. A cluster or snapshot tagged
//! `aws:cloudformation:stack-name` belongs to that CloudFormation stack; one
//! carrying a tag of `[remediation] iac_tags` (`key=value`, or a key alone)
//! to another tool (Terraform, usually). A change made beside the owner is
//! drift: the owner's next update puts the old value back. So a `remediate`
//! decision for an owned resource becomes a ticket (`[remediation]
//! iac_managed = "ticket"`, the default) whose fix is the change to make in
//! the stack: the control's CloudFormation property and Terraform argument.
//! Pure.

use std::collections::BTreeMap;

/// The tag CloudFormation puts on the resources of a stack.
pub const STACK_TAG: &str = "aws:cloudformation:stack-name";

/// Who owns a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A CloudFormation stack, by name.
    Stack(String),
    /// Another tool, by the configured tag that marks it (`managed-by=terraform`).
    Tagged(String),
}

impl Owner {
    pub fn describe(&self) -> String {
        match self {
            Owner::Stack(stack) => format!("CloudFormation stack {stack}"),
            Owner::Tagged(tag) => format!("the tool its tag {tag} names"),
        }
    }
}

/// The owner `tags` name, if any (the stack first, then `iac_tags` in order).
pub fn owner(tags: &BTreeMap<String, String>, iac_tags: &[String]) -> Option<Owner> {
    if let Some(stack) = tags.get(STACK_TAG) {
        return Some(Owner::Stack(stack.clone()));
    }
    iac_tags.iter().find_map(|marker| {
        let held = match marker.split_once('=') {
            Some((k, v)) => tags.get(k).is_some_and(|have| have == v),
            None => tags.contains_key(marker.as_str()),
        };
        held.then(|| Owner::Tagged(marker.clone()))
    })
}

/// A control's fix, as the change to make where the resource is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackChange {
    /// CloudFormation: `AWS::Neptune::DBCluster DeletionProtection: true`, ...
    pub cloudformation: Vec<String>,
    /// Terraform: `aws_neptune_cluster deletion_protection = true`, ...
    pub terraform: Vec<String>,
}

impl StackChange {
    /// One property of `AWS::Neptune::DBCluster` and its `aws_neptune_cluster` argument.
    pub fn cluster(property: &str, argument: &str, value: &str) -> StackChange {
        StackChange {
            cloudformation: vec![format!("AWS::Neptune::DBCluster {property}: {value}")],
            terraform: vec![format!("aws_neptune_cluster {argument} = {value}")],
        }
    }
}

/// The sentence a reason adds for an owned resource, and the fix a ticket
/// shows: the change to make in the stack (or, where no property holds the
/// setting, the fix in place and a word to the stack's owners).
pub fn owned(
    owner: &Owner,
    noun: &str,
    change: Option<&StackChange>,
    in_place: Vec<String>,
) -> (String, Vec<String>) {
    let who = owner.describe();
    let Some(change) = change else {
        let why = format!(
            "the {noun} belongs to {who} ([remediation] iac_managed = \"ticket\"), and no property of the stack holds this setting: fix it in place, by hand."
        );
        let mut fix = in_place;
        fix.push(format!("Tell the owners of {who} what was changed."));
        return (why, fix);
    };
    let cfn = change.cloudformation.join("; ");
    let tf = change.terraform.join("; ");
    let why = format!(
        "the {noun} belongs to {who} ([remediation] iac_managed = \"ticket\"), and a change beside it is drift its next update puts back: change the stack instead, {cfn} (Terraform: {tf})."
    );
    let mut fix = Vec::new();
    match owner {
        Owner::Stack(stack) => {
            fix.push(format!("The {noun} belongs to CloudFormation stack {stack}: change the template, not the {noun}."));
            fix.push(format!("In the template set {cfn}, then update the stack (aws cloudformation deploy --stack-name {stack} ...)."));
            fix.push(format!(
                "If Terraform defines it instead: {tf}, then terraform plan and apply."
            ));
        }
        Owner::Tagged(tag) => {
            fix.push(format!(
                "The {noun} is tagged {tag}: change its configuration, not the {noun}."
            ));
            fix.push(format!("Terraform: {tf}, then terraform plan and apply."));
            fix.push(format!("CloudFormation: {cfn}, then update the stack."));
        }
    }
    (why, fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_stack_tag_or_a_configured_tag_names_the_owner() {
        let iac = vec!["managed-by=terraform".to_string(), "terraform".to_string()];
        assert_eq!(
            owner(&tags(&[(STACK_TAG, "orders-prod")]), &iac),
            Some(Owner::Stack("orders-prod".into()))
        );
        assert_eq!(
            owner(&tags(&[("managed-by", "terraform")]), &iac),
            Some(Owner::Tagged("managed-by=terraform".into()))
        );
        assert_eq!(owner(&tags(&[("managed-by", "pulumi")]), &iac), None);
        assert_eq!(
            owner(&tags(&[("terraform", "")]), &iac),
            Some(Owner::Tagged("terraform".into()))
        );
        assert_eq!(owner(&tags(&[("env", "prod")]), &[]), None);
    }

    #[test]
    fn the_fix_is_the_change_to_the_stack() {
        let change = StackChange::cluster("DeletionProtection", "deletion_protection", "true");
        let (why, fix) = owned(
            &Owner::Stack("orders-prod".into()),
            "cluster",
            Some(&change),
            vec![],
        );
        assert!(
            why.contains("AWS::Neptune::DBCluster DeletionProtection: true"),
            "{why}"
        );
        assert!(
            why.contains("aws_neptune_cluster deletion_protection = true"),
            "{why}"
        );
        assert!(
            fix.join(" ").contains("--stack-name orders-prod"),
            "{fix:?}"
        );
    }
}
