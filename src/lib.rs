//! halyard: the HAProxy log pipeline in one program.
//!
//! - [`logline`]: the one model of an HAProxy log line, its parser and its formatter.
//! - [`input`]: reading log files (plain, `.gz`, stdin) as numbered lines.
//! - [`report`]: status, latency, fairness and more over log files, with polars.
//! - [`config`]: the haproxy.cfg subset halyard reads.
//! - [`balancer`]: the L7/L4 load balancer `halyard run` starts.
//! - [`listener`]: the syslog receiver writing rotating files.
//! - [`follow`]: `halyard tail`: following rotating files, filter expressions, pretty lines.

pub mod balancer;
pub mod config;
pub mod follow;
pub mod input;
pub mod listener;
pub mod logline;
pub mod report;
