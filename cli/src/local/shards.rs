//! How Kinesis puts a record on a shard: the MD5 of its partition key, read as a 128-bit big-endian integer (the
//! hash key), falls in exactly one open shard's hash key range. `produce` routes by the ranges a real stream
//! lists (to pack KPL aggregates per shard); `demo` by a stream whose ranges split the key space evenly.

use aws_sdk_kinesis::types::Shard;
use md5::{Digest, Md5};

/// The 128-bit hash key Kinesis routes a partition key by: the MD5 of its bytes, big-endian.
pub fn hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// An open shard and the hash keys it takes, `start..=end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRange {
    pub id: String,
    pub start: u128,
    pub end: u128,
}

/// A stream's open shards, in key order; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    ranges: Vec<ShardRange>,
}

impl ShardMap {
    /// The open shards of a ListShards answer (closed ones take no records); `None` when none is open.
    pub fn from_listed(shards: &[Shard]) -> Option<ShardMap> {
        let ranges = shards
            .iter()
            .filter(|s| s.sequence_number_range.as_ref().is_some_and(|r| r.ending_sequence_number.is_none()))
            .filter_map(|s| {
                let r = s.hash_key_range.as_ref()?;
                Some(ShardRange {
                    id: s.shard_id.clone(),
                    start: r.starting_hash_key.parse().ok()?,
                    end: r.ending_hash_key.parse().ok()?,
                })
            })
            .collect();
        ShardMap::new(ranges)
    }

    /// `shards` shards (`shardId-000000000000`, ...) splitting the key space evenly: shard `i` takes the hash
    /// keys whose upper 64 bits `h` have `⌊h × shards / 2⁶⁴⌋ = i`.
    pub fn even(shards: u16) -> ShardMap {
        let n = u128::from(shards.max(1));
        // The first upper half of shard i: ⌈i × 2⁶⁴ / n⌉.
        let start = |i: u128| (i << 64).div_ceil(n) << 64;
        let ranges = (0..n)
            .map(|i| ShardRange {
                id: format!("shardId-{i:012}"),
                start: start(i),
                end: if i + 1 == n { u128::MAX } else { start(i + 1) - 1 },
            })
            .collect();
        ShardMap::new(ranges).expect("at least one shard")
    }

    fn new(mut ranges: Vec<ShardRange>) -> Option<ShardMap> {
        ranges.sort_by_key(|r| r.start);
        (!ranges.is_empty()).then_some(ShardMap { ranges })
    }

    pub fn ranges(&self) -> &[ShardRange] {
        &self.ranges
    }

    /// The index (in [`ShardMap::ranges`]) of the shard a partition key goes to; the first shard for a hash key
    /// no range takes (a stream mid-reshard lists gaps).
    pub fn route(&self, partition_key: &str) -> usize {
        let h = hash_key(partition_key);
        self.ranges.iter().position(|r| r.start <= h && h <= r.end).unwrap_or(0)
    }

    /// The id of the shard a partition key goes to.
    pub fn shard_of(&self, partition_key: &str) -> &str {
        &self.ranges[self.route(partition_key)].id
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn hash_keys_are_the_md5_of_the_partition_key() {
        // md5("S00001") read as a big-endian 128-bit integer, as Kinesis does.
        let expected = u128::from_str_radix(&format!("{:x}", Md5::digest(b"S00001")), 16).unwrap();
        assert_eq!(hash_key("S00001"), expected);
        let map = ShardMap::new(vec![
            ShardRange { id: "b".into(), start: u128::MAX / 2 + 1, end: u128::MAX },
            ShardRange { id: "a".into(), start: 0, end: u128::MAX / 2 },
        ])
        .unwrap();
        assert_eq!(map.shard_of("S00001"), if expected <= u128::MAX / 2 { "a" } else { "b" });
    }

    #[test]
    fn even_shards_cover_the_key_space() {
        for n in [1u16, 2, 3, 4, 7, 64] {
            let map = ShardMap::even(n);
            let r = map.ranges();
            assert_eq!(r.len(), usize::from(n));
            assert_eq!((r[0].start, r[r.len() - 1].end), (0, u128::MAX));
            assert!(r.windows(2).all(|w| w[0].end + 1 == w[1].start && w[0].start <= w[0].end), "{n}: {r:?}");
        }
        assert_eq!(ShardMap::even(4).ranges()[1].start, 1 << 126);
        assert_eq!(ShardMap::even(4).ranges()[3].id, "shardId-000000000003");
    }

    #[test]
    fn partition_keys_spread_over_shards() {
        let map = ShardMap::even(4);
        let mut hits = [0; 4];
        for n in 1..=400 {
            hits[map.route(&salesflow_core::generate::store_id(n))] += 1;
        }
        assert!(hits.iter().all(|h| (60..140).contains(h)), "{hits:?}");
    }

    proptest! {
        /// Even shards take a hash key by its upper 64 bits, ⌊h × n / 2⁶⁴⌋, the routing the demo has always had.
        #[test]
        fn even_shards_route_by_the_upper_half(key in ".{0,24}", n in 1u16..=64) {
            let map = ShardMap::even(n);
            let expected = (((hash_key(&key) >> 64) * u128::from(n)) >> 64) as usize;
            prop_assert_eq!(map.route(&key), expected);
        }

        #[test]
        fn even_shard_edges_route_by_the_upper_half(i in 0u16..64, n in 1u16..=64, below in any::<bool>()) {
            let map = ShardMap::even(n);
            let Some(range) = map.ranges().get(usize::from(i)) else { return Ok(()) };
            let h = if below { range.start.saturating_sub(1) } else { range.start };
            let expected = (((h >> 64) * u128::from(n)) >> 64) as usize;
            prop_assert_eq!(map.ranges().iter().position(|r| r.start <= h && h <= r.end), Some(expected));
        }
    }
}
