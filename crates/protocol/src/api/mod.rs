//! JSON types of each HTTP API, one module per service.

pub mod personal_server;
pub mod relayer;
pub mod replicate;
pub mod storage;
pub mod subgraph;
pub mod tee;
