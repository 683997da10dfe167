//! The end-to-end tests: the real `hubtriage` binary against the loopback
//! emulators (`tests/emulator/`: moto and the Security Hub emulator, and the
//! ticket systems' fakes), one module per subject, in one test binary so
//! that they build once and run side by side (`scripts/test.sh` runs them
//! with several threads: each test has its own emulator and daemons).
//!
//! Every address used is 127.0.0.1.

mod support;

mod accounts;
mod controls;
mod daemon;
mod faults;
mod journal;
mod journal_faults;
mod never_fight;
mod remediate;
mod report_browser;
mod tickets;
mod undo;
mod v2;
