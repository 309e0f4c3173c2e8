//! A keyspace's shards as resources a capacity model ranks: each shard's operations per
//! second over the capacity the application declared for one shard.

use super::*;
use scalewatch_core::clock::now_nanos;
use scalewatch_core::resource::{Reading, ResourceKind, ResourceSource, Saturable};

/// Operations on each shard at one instant: what a reader's window starts from.
struct ShardCounts {
    at: u64,
    loads: Vec<u64>,
}

impl ShardCounts {
    fn read(keyspace: &Keyspace) -> Self {
        Self {
            at: now_nanos(),
            loads: keyspace.shard_loads(),
        }
    }
}

/// A reader of the shards picked by `pick` (given each shard's use over the window since
/// its last call), with windows of its own; `None` without a declared capacity, when
/// disabled, or when no time has passed.
fn shard_reader(
    keyspace: &Keyspace,
    pick: impl Fn(&[f64]) -> Option<f64> + Send + Sync + 'static,
) -> Arc<dyn Fn() -> Option<Reading> + Send + Sync> {
    let keyspace = keyspace.clone();
    let last = Mutex::new(ShardCounts::read(&keyspace));
    Arc::new(move || {
        let capacity = keyspace.inner.shard_capacity.filter(|_| keyspace.enabled)?;
        let now = ShardCounts::read(&keyspace);
        let mut then = lock(&last);
        let seconds = now.at.checked_sub(then.at).filter(|d| *d > 0)? as f64 / 1e9;
        let used: Vec<f64> = now
            .loads
            .iter()
            .zip(&then.loads)
            .map(|(now, then)| now.wrapping_sub(*then) as f64 / seconds / capacity)
            .collect();
        *then = now;
        drop(then);
        // More operations than the declared capacity: full, with the excess waiting.
        pick(&used).map(|u| Reading {
            utilization: u.min(1.0),
            waiting: (u - 1.0).max(0.0),
        })
    })
}

impl Keyspace {
    /// The name a capacity model gives shard `index`: `name/NN`, zero-padded to the width
    /// of the largest index so that shards sort in order.
    fn shard_name(&self, index: usize) -> String {
        let width = self.inner.shards.saturating_sub(1).max(1).ilog10() as usize + 1;
        format!("{}/{index:0width$}", self.inner.name)
    }
}

impl Saturable for Keyspace {
    /// The keyspace as one resource, for `CapacityModel::register`: its busiest shard's
    /// operations per second over the declared shard capacity. Reads nothing without
    /// [`shard_capacity`](KeyspaceBuilder::shard_capacity).
    fn resource(&self) -> ResourceSource {
        ResourceSource {
            kind: ResourceKind::Shard,
            name: self.inner.name.into(),
            read: shard_reader(self, |used| used.iter().copied().reduce(f64::max)),
        }
    }

    /// Every shard, each named `name/NN` and read over windows of its own; empty without
    /// shards and a declared [`shard_capacity`](KeyspaceBuilder::shard_capacity).
    fn resources(&self) -> Vec<ResourceSource> {
        if self.inner.shard_capacity.is_none() {
            return Vec::new();
        }
        (0..self.inner.shards)
            .map(|i| ResourceSource {
                kind: ResourceKind::Shard,
                name: self.shard_name(i).into(),
                read: shard_reader(self, move |used| used.get(i).copied()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::metrics::MeterProvider as _;
    use std::time::Instant;

    fn keyspace(capacity: Option<f64>) -> Keyspace {
        let meter = opentelemetry::metrics::noop::NoopMeterProvider::new().meter("t");
        let mut builder = Keyspace::builder("catalog").shards(12);
        if let Some(capacity) = capacity {
            builder = builder.shard_capacity(capacity);
        }
        builder.build(&meter).unwrap()
    }

    #[test]
    fn a_capacity_needs_shards_and_a_positive_finite_value() {
        let meter = opentelemetry::metrics::noop::NoopMeterProvider::new().meter("t");
        let unsharded = Keyspace::builder("k").shard_capacity(100.0).build(&meter);
        assert!(matches!(
            unsharded.unwrap_err(),
            KeyspaceError::ShardCapacity { name: "k", .. }
        ));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let built = Keyspace::builder("k")
                .shards(4)
                .shard_capacity(bad)
                .build(&meter);
            assert!(built.is_err(), "{bad}");
        }
    }

    #[test]
    fn each_shard_is_a_resource_named_in_order_and_none_without_a_capacity() {
        let names: Vec<String> = keyspace(Some(10.0))
            .resources()
            .iter()
            .map(|r| r.name.to_string())
            .collect();
        let expected: Vec<String> = (0..12).map(|i| format!("catalog/{i:02}")).collect();
        assert_eq!(names, expected);
        assert!(keyspace(None).resources().is_empty());
        assert_eq!(((keyspace(None).resource().read)()), None);
    }

    #[test]
    fn a_shard_reads_its_operations_per_second_over_the_declared_capacity() {
        let capacity = 10_000.0;
        let ks = keyspace(Some(capacity));
        let outer = Instant::now();
        let shards = ks.resources();
        let inner = Instant::now();
        for key in 0..300u64 {
            ks.record_in_shard(Operation::Read, &key, 5);
        }
        ks.record_in_shard(Operation::Write, &1u64, 7);
        std::thread::sleep(Duration::from_millis(100));
        let inner = inner.elapsed().as_secs_f64();
        let readings: Vec<Reading> = shards.iter().map(|s| (s.read)().unwrap()).collect();
        let outer = outer.elapsed().as_secs_f64();
        // The window lies between the two clocks the test read around it.
        let (low, high) = (300.0 / outer / capacity, 300.0 / inner / capacity);
        let hot = readings[5].utilization;
        assert!(low <= hot && hot <= high, "{low} <= {hot} <= {high}");
        assert!(readings[7].utilization > 0.0 && readings[7].utilization < hot / 100.0);
        assert_eq!(readings[0], Reading::default());
        // A second window starts where the first ended: nothing since.
        assert_eq!((shards[5].read)().unwrap().utilization, 0.0);
    }

    #[test]
    fn more_operations_than_the_capacity_read_full_with_the_excess_waiting() {
        let ks = keyspace(Some(1.0));
        let busiest = ks.resource();
        for key in 0..1_000u64 {
            ks.record_in_shard(Operation::Read, &key, 2);
        }
        let reading = (busiest.read)().unwrap();
        assert_eq!(reading.utilization, 1.0);
        assert!(reading.waiting > 1.0, "{reading:?}");
    }
}
