//! The local stand-ins for AWS that `dev`, `produce` and `demo` share: how Kinesis routes a partition key to a
//! shard ([`shards`]), the events Lambda's triggers deliver — Kinesis records, S3 notifications, EventBridge
//! schedules ([`events`]) — and the command-line pieces of a long local run: durations as people write them
//! ([`duration`]) and the progress display ([`progress`]).

pub mod duration;
pub mod events;
pub mod progress;
pub mod shards;
