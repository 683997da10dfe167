//! Enrich step: the live state of the cluster a finding names.

pub mod cache;
pub mod neptune;
