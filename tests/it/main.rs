//! Integration tests: one binary, one module per concern.
//!
//! - `fake_vcenter`: the client against recorded envelopes served by a scripted SOAP server
//!   (paging, expired sessions, faults: what the simulator never does).
//! - `simulator`: the whole exporter against govmomi's vCenter simulator (`tests/vcsim`),
//!   metrics compared value by value with the facts the simulator program wrote.
//! - `golden`: the whole `/metrics` output of a fixed scenario against a committed file.

mod fake_vcenter;
mod support;
