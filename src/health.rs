//! `hubtriage healthcheck`: healthy only while the receive loop has made
//! progress recently. The loop writes the time into `[daemon] heartbeat_file`
//! on every turn; a loop that is stuck (or a process that is gone) stops doing so.

use std::path::Path;

use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unhealthy {
    #[error("no heartbeat in {file}: {reason}")]
    Missing { file: String, reason: String },
    #[error("the receive loop last made progress {age} s ago (limit {limit} s; heartbeat {file})")]
    Stale { file: String, age: i64, limit: i64 },
}

/// The default limit: twice the long-poll wait, and at least 10 s.
pub fn default_max_age(wait_seconds: i32) -> i64 {
    (2 * i64::from(wait_seconds)).max(10)
}

/// The heartbeat's age in seconds, or why the daemon is unhealthy.
pub fn check(file: &Path, max_age: i64, now: DateTime<Utc>) -> Result<i64, Unhealthy> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).map_err(|e| Unhealthy::Missing {
        file: name.clone(),
        reason: e.to_string(),
    })?;
    let then: i64 = text.trim().parse().map_err(|_| Unhealthy::Missing {
        file: name.clone(),
        reason: format!("expected a Unix time, found {:?}", text.trim()),
    })?;
    let age = now.timestamp() - then;
    if age > max_age {
        return Err(Unhealthy::Stale {
            file: name,
            age,
            limit: max_age,
        });
    }
    Ok(age)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_stale_and_missing_heartbeats() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hb");
        let now = Utc::now();
        assert!(matches!(
            check(&file, 40, now),
            Err(Unhealthy::Missing { .. })
        ));
        std::fs::write(&file, (now.timestamp() - 5).to_string()).unwrap();
        assert_eq!(check(&file, 40, now), Ok(5));
        std::fs::write(&file, (now.timestamp() - 41).to_string()).unwrap();
        assert!(matches!(
            check(&file, 40, now),
            Err(Unhealthy::Stale { age: 41, .. })
        ));
        std::fs::write(&file, "garbage").unwrap();
        assert!(matches!(
            check(&file, 40, now),
            Err(Unhealthy::Missing { .. })
        ));
        assert_eq!(default_max_age(20), 40);
        assert_eq!(default_max_age(1), 10);
    }
}
