//! The tests that need no emulator: the command line on fixture files, the
//! explain golden files, the deployment templates against the code, hostile
//! input, the parser's property test and the shape of `src/`, one module
//! each, in one test binary.

mod cli;
mod controls_docs;
mod deploy;
mod explain_controls;
mod explain_golden;
mod explain_never_fight;
mod explain_strict;
mod hostile_input;
mod parse_props;
mod structure;
