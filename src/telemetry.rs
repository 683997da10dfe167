//! Logging: JSON lines when stdout is not a terminal (ECS) or when
//! `HUBTRIAGE_LOG_FORMAT=json`; readable text on a terminal. `RUST_LOG` filters
//! (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match std::env::var("HUBTRIAGE_LOG_FORMAT").ok().as_deref() {
        Some("json") => true,
        Some("text") => false,
        _ => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.with_target(false).try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
