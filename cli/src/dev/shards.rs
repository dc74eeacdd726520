//! The shards of the stream as `dev` knows them: which are listed, their parents (after a split or a merge),
//! which are read to their end, and which are idle. A child is read only once its parents are read to their
//! end, so a partition key's records stay in order.

use std::collections::{HashMap, HashSet};

use aws_sdk_kinesis::types::Shard;

#[derive(Debug, Default)]
pub struct Shards {
    listed: HashSet<String>,
    parents: HashMap<String, Vec<String>>,
    finished: HashSet<String>,
    /// Whether each shard being read is caught up with nothing buffered.
    idle: HashMap<String, bool>,
}

impl Shards {
    /// Adds the shards not known yet, not idle; returns their ids.
    pub fn add(&mut self, shards: &[Shard]) -> Vec<String> {
        let mut added = Vec::new();
        for shard in shards {
            if self.listed.insert(shard.shard_id.clone()) {
                let parents = [&shard.parent_shard_id, &shard.adjacent_parent_shard_id];
                self.parents.insert(shard.shard_id.clone(), parents.into_iter().flatten().cloned().collect());
                self.idle.insert(shard.shard_id.clone(), false);
                added.push(shard.shard_id.clone());
            }
        }
        added
    }

    /// The parents `shard` must wait for.
    pub fn waiting_for(&self, shard: &str) -> Vec<String> {
        let parents: Vec<&str> = self.parents.get(shard).into_iter().flatten().map(String::as_str).collect();
        unfinished_parents(&parents, &self.listed, &self.finished).into_iter().map(String::from).collect()
    }

    /// `shard` is closed and read to its end.
    pub fn finish(&mut self, shard: &str) {
        self.finished.insert(shard.to_string());
    }

    pub fn set_idle(&mut self, shard: &str, idle: bool) {
        self.idle.insert(shard.to_string(), idle);
    }

    /// Whether every shard is caught up with nothing buffered.
    pub fn all_idle(&self) -> bool {
        self.idle.values().all(|idle| *idle)
    }
}

/// The parents of a shard (`ParentShardId`, and `AdjacentParentShardId` after a merge) it must wait for: those
/// still listed by ListShards and not yet read to their end. A parent no longer listed has been trimmed.
fn unfinished_parents<'a>(parents: &[&'a str], listed: &HashSet<String>, finished: &HashSet<String>) -> Vec<&'a str> {
    parents.iter().copied().filter(|p| listed.contains(*p) && !finished.contains(*p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn shard(id: &str, parent: Option<&str>, adjacent: Option<&str>) -> Shard {
        Shard::builder()
            .shard_id(id)
            .set_parent_shard_id(parent.map(String::from))
            .set_adjacent_parent_shard_id(adjacent.map(String::from))
            .build()
            .unwrap()
    }

    #[test]
    fn children_wait_for_listed_unfinished_parents() {
        let listed = set(&["p", "q", "c"]);
        assert_eq!(unfinished_parents(&["p"], &listed, &set(&[])), ["p"]);
        assert!(unfinished_parents(&["p"], &listed, &set(&["p"])).is_empty());
        // A merge waits for both parents.
        assert_eq!(unfinished_parents(&["p", "q"], &listed, &set(&["p"])), ["q"]);
        // A parent trimmed from the stream blocks nothing.
        assert!(unfinished_parents(&["gone"], &listed, &set(&[])).is_empty());
        assert!(unfinished_parents(&[], &listed, &set(&[])).is_empty());
    }

    #[test]
    fn shards_are_added_once_and_idle_when_all_are() {
        let mut shards = Shards::default();
        assert_eq!(shards.add(&[shard("p", None, None), shard("q", None, None)]), ["p", "q"]);
        assert_eq!(shards.add(&[shard("p", None, None), shard("c", Some("p"), Some("q"))]), ["c"]);
        assert_eq!(shards.waiting_for("c"), ["p", "q"]);
        shards.finish("p");
        assert_eq!(shards.waiting_for("c"), ["q"]);
        for id in ["p", "q"] {
            shards.set_idle(id, true);
        }
        assert!(!shards.all_idle(), "c is new, not idle yet");
        shards.set_idle("c", true);
        assert!(shards.all_idle());
    }
}
