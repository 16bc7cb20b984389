//! Helpers shared by the integration tests: broker address, unique topics, a consumer.

use std::{
    collections::BTreeMap,
    future::Future,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, TimeZone, Utc};
use product_api::infra::kafka::{KafkaConfig, OutgoingRecord, ProductTopic};
use rskafka::{
    client::{partition::UnknownTopicHandling, Client, ClientBuilder},
    record::RecordAndOffset,
};

/// Bound for every network step of a test; nothing may hang a test run.
pub const STEP: Duration = Duration::from_secs(60);

/// The broker under test. Fails (never skips) when `KAFKA_BROKERS` is unset.
pub fn brokers_from_env() -> String {
    match std::env::var("KAFKA_BROKERS") {
        Ok(brokers) if !brokers.trim().is_empty() => brokers,
        _ => panic!(
            "KAFKA_BROKERS is not set. These tests need a real broker: run \
             scripts/test, which starts a broker"
        ),
    }
}

/// A topic prefix no other test or earlier run used, so each test sees only its own records.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_nanos();
    format!("test-{test}-{}-{nanos}.", std::process::id())
}

/// A configuration for `brokers` with a fresh topic prefix and a short operation timeout.
pub fn test_config(brokers: &str, test: &str) -> KafkaConfig {
    let mut config = KafkaConfig::new(brokers).expect("broker list");
    config.topic_prefix = unique_prefix(test);
    config.operation_timeout = Duration::from_secs(5);
    config
}

/// Runs `future`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {STEP:?}"))
}

pub async fn raw_client(brokers: &str) -> Client {
    bounded(
        "connecting the test consumer",
        ClientBuilder::new(brokers.split(',').map(str::to_owned).collect()).build(),
    )
    .await
    .expect("test consumer connects")
}

/// Every record of one partition, read until the high watermark of the fetch responses
/// (tansu's ListOffsets(latest) answer is not reliable, so it is not used).
pub async fn consume_partition(
    client: &Client,
    topic: &str,
    partition: i32,
) -> Vec<RecordAndOffset> {
    let partition_client = bounded(
        "opening a partition for consuming",
        client.partition_client(topic, partition, UnknownTopicHandling::Retry),
    )
    .await
    .expect("partition client");
    let mut offset = 0;
    let mut records = Vec::new();
    for _ in 0..1_000 {
        let (batch, high_watermark) = bounded(
            "fetching records",
            partition_client.fetch_records(offset, 1..1_000_000, 100),
        )
        .await
        .unwrap_or_else(|e| panic!("fetch {topic}/{partition} at {offset}: {e}"));
        for record in batch {
            offset = record.offset + 1;
            records.push(record);
        }
        if offset >= high_watermark {
            return records;
        }
    }
    panic!("{topic}/{partition}: no progress towards the high watermark at offset {offset}");
}

/// A record whose value and headers identify it: `{"sellerId":..,"seq":..}` plus headers.
pub fn event(topic: ProductTopic, seller: &str, seq: u32) -> OutgoingRecord {
    let mut headers = BTreeMap::new();
    headers.insert("event-type".to_owned(), topic.suffix().as_bytes().to_vec());
    headers.insert("seq".to_owned(), seq.to_string().into_bytes());
    OutgoingRecord {
        topic,
        key: seller.to_owned(),
        value: format!(r#"{{"sellerId":"{seller}","seq":{seq}}}"#).into_bytes(),
        headers,
        timestamp: timestamp(seq),
    }
}

/// Millisecond timestamps, as Kafka stores them.
pub fn timestamp(seq: u32) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_700_000_000_000 + i64::from(seq) * 7)
        .single()
        .expect("valid timestamp")
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tansu");

/// A private broker, stopped when the test ends however it ends.
pub struct Broker {
    state_dir: PathBuf,
}

impl Broker {
    pub fn start() -> (Self, String) {
        let state_dir = std::env::temp_dir().join(unique_prefix("restart-broker"));
        let broker = Self { state_dir };
        let brokers = broker.run("start");
        (broker, brokers)
    }

    /// Runs the script and returns the address from its `KAFKA_BROKERS=` line.
    pub fn run(&self, command: &str) -> String {
        let output = run_script(&self.state_dir, command);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "scripts/tansu {command} failed (is tansu installed? run ./scripts/tansu once):\n{}{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix("KAFKA_BROKERS="))
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        run_script(&self.state_dir, "stop");
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

fn run_script(state_dir: &Path, command: &str) -> std::process::Output {
    Command::new("bash")
        .arg(SCRIPT)
        .arg(command)
        .env("TANSU_STATE_DIR", state_dir)
        .env("TANSU_NO_INSTALL", "1")
        .env_remove("TANSU_PORT")
        .output()
        .expect("run scripts/tansu")
}
