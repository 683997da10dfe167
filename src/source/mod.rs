//! Where findings come from. Today: the SQS queue EventBridge fills.

pub mod sqs;
