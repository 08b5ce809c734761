//! ringfence: run researchers' WebAssembly analyses on confidential microdata
//! under deny-by-default project policies.
//!
//! The library is what the `ringfence` binary (and later the service) calls:
//!
//! - [`catalog`] imports microdata, versions it and cuts it down to each grant's variables;
//! - [`policy`] reads and validates a project's TOML policy into a typed [`policy::Policy`];
//! - [`sandbox`] runs a WebAssembly module with exactly the capabilities a policy grants;
//! - [`home`] is the state directory: job records, captured exports, the module cache;
//! - [`interpreters`] are the runtimes (CPython) an operator installs for script jobs;
//! - [`job`] ties the three together: one researcher's run of one module under one policy;
//! - [`queue`] turns a job's outputs into export requests and takes them through the automatic
//!   [`disclosure`] checks, checkers' decisions and release;
//! - [`store`] is the embedded SQLite database behind the queue, and [`audit`] its hash-chained
//!   log of everything that happened;
//! - [`tokens`] are the personal API tokens people use to reach the [`service`], the HTTP API
//!   over the same calls.
//!
//! The library never reads environment variables or prints to a terminal; the binary does.

mod atomic_file;
pub mod audit;
pub mod catalog;
pub mod disclosure;
pub mod home;
pub mod interpreters;
pub mod job;
pub mod policy;
pub mod queue;
pub mod sandbox;
pub mod service;
pub mod store;
pub mod tokens;
pub mod untrusted;
pub mod view;
pub mod worker;
