//! A cluster for one test: three `product-api` processes on a fresh PostgreSQL database, the
//! shared Redis and Kafka broker, and HAProxy in front of them running `deploy/haproxy.cfg`.
//! Every process is killed when the cluster is dropped, however the test ends.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use reqwest::{Response, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tokio::sync::{Mutex, MutexGuard};

/// One cluster at a time: three servers already keep two cores busy.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The instances, named as in `deploy/haproxy.cfg` (HAProxy reports them in `X-Served-By`).
pub const NAMES: [&str; 3] = ["app1", "app2", "app3"];

const BINARY: &str = env!("CARGO_BIN_EXE_product-api");
const HAPROXY_CFG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy.cfg");

/// What differs between the tests' clusters.
pub struct Settings {
    /// `RATE_LIMIT_STANDARD`; the default is far above anything a test sends.
    pub rate_limit_standard: u32,
    /// `SHUTDOWN_DELAY_SECS`: how long a stopping instance still accepts connections.
    pub shutdown_delay_secs: u64,
    /// Further variables for every instance.
    pub extra: Vec<(&'static str, String)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rate_limit_standard: 1_000_000,
            shutdown_delay_secs: 0,
            extra: Vec::new(),
        }
    }
}

/// A variable `scripts/test` sets; the tests fail, never skip, without it.
fn required(var: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!("{var} is not set: the cluster tests need it; run them with scripts/test"),
    }
}

struct Instance {
    name: &'static str,
    port: u16,
    child: Option<Child>,
    spool: PathBuf,
}

pub struct Cluster {
    pub client: reqwest::Client,
    /// The balancer, `http://127.0.0.1:<port>`.
    pub lb: String,
    pub db_url: String,
    pub brokers: String,
    pub topic_prefix: String,
    instances: Vec<Instance>,
    env: Vec<(String, String)>,
    haproxy: Option<Child>,
    dir: PathBuf,
    // Declared last: released after the processes are gone.
    _serial: MutexGuard<'static, ()>,
}

impl Cluster {
    pub async fn start(test: &str, settings: Settings) -> Self {
        let serial = SERIAL.lock().await;
        let admin_url = required("TEST_DATABASE_URL");
        let redis_url = required("TEST_REDIS_URL");
        let brokers = required("KAFKA_BROKERS");
        check_redis(&redis_url).await;
        check_kafka(&brokers).await;
        let haproxy = haproxy_binary();

        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir()
            .join("product-api-tests")
            .join(format!("cluster-{test}-{id}"));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let db_url = fresh_database(&admin_url, &id).await;
        let topic_prefix = format!("cluster-{test}-{id}.");

        let env: Vec<(String, String)> = [
            ("HOST", "127.0.0.1".to_string()),
            ("DATABASE_URL", db_url.clone()),
            ("DATABASE_MAX_CONNECTIONS", "8".into()),
            ("REDIS_URL", redis_url),
            ("KAFKA_BROKERS", brokers.clone()),
            ("KAFKA_TOPIC_PREFIX", topic_prefix.clone()),
            ("OUTBOX_SWEEP_MS", "200".into()),
            (
                "RATE_LIMIT_STANDARD",
                settings.rate_limit_standard.to_string(),
            ),
            ("RATE_LIMIT_BULK", "1000000".into()),
            (
                "SHUTDOWN_DELAY_SECS",
                settings.shutdown_delay_secs.to_string(),
            ),
            ("SHUTDOWN_TIMEOUT_SECS", "10".into()),
            ("LOG_FORMAT", "json".into()),
            (
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            ),
        ]
        .into_iter()
        .chain(settings.extra)
        .map(|(k, v)| (k.to_string(), v))
        .collect();

        let mut cluster = Self {
            client: reqwest::Client::builder()
                // Below HAProxy's `timeout http-keep-alive`, so no request goes out on a
                // connection the balancer is closing.
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client"),
            lb: String::new(),
            db_url,
            brokers,
            topic_prefix,
            instances: NAMES
                .iter()
                .map(|&name| Instance {
                    name,
                    port: free_port(),
                    child: None,
                    spool: dir.join(format!("{name}-spool")),
                })
                .collect(),
            env,
            haproxy: None,
            dir,
            _serial: serial,
        };
        // Migrate once, so three servers starting together do not race to create the schema.
        let migrated = cluster
            .command("migrate")
            .arg("migrate")
            .status()
            .expect("run product-api migrate");
        assert!(migrated.success(), "{}", cluster.logs_hint("migrate"));
        for name in NAMES {
            cluster.spawn(name);
        }
        for name in NAMES {
            cluster.wait_ready(name).await;
        }

        let lb_port = free_port();
        cluster.lb = format!("http://127.0.0.1:{lb_port}");
        let mut lb = Command::new(&haproxy);
        lb.args(["-db", "-f", HAPROXY_CFG])
            .env("LB_BIND", format!("127.0.0.1:{lb_port}"));
        for instance in &cluster.instances {
            lb.env(
                format!("{}_ADDR", instance.name.to_uppercase()),
                format!("127.0.0.1:{}", instance.port),
            );
        }
        let log = cluster.log_file("haproxy");
        cluster.haproxy = Some(
            lb.stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("{haproxy} does not start: {e}")),
        );
        for name in NAMES {
            cluster.wait_routed(name).await;
        }
        cluster
    }

    /// The balancer's URL for `path`.
    pub fn lb_url(&self, path: &str) -> String {
        format!("{}{path}", self.lb)
    }

    /// `name`'s own URL for `path`, bypassing the balancer.
    pub fn direct_url(&self, name: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.instance(name).port)
    }

    /// `name`'s `IMPORT_SPOOL_DIR`: its local disk, as far as imports are concerned.
    pub fn spool_dir(&self, name: &str) -> PathBuf {
        self.instance(name).spool.clone()
    }

    fn instance(&self, name: &str) -> &Instance {
        self.instances
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no instance {name}"))
    }

    fn instance_mut(&mut self, name: &str) -> &mut Instance {
        self.instances
            .iter_mut()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no instance {name}"))
    }

    fn log_file(&self, name: &str) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .expect("log file")
    }

    /// Where to look when `name` misbehaved, with the end of its log.
    pub fn logs_hint(&self, name: &str) -> String {
        let path = self.dir.join(format!("{name}.log"));
        let mut text = String::new();
        let _ = File::open(&path).and_then(|mut f| f.read_to_string(&mut text));
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "{name} failed; its log is {} and ends:\n{}",
            path.display(),
            tail.join("\n")
        )
    }

    fn command(&self, log: &str) -> Command {
        let file = self.log_file(log);
        let mut command = Command::new(BINARY);
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("DATA_DIR", &self.dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file);
        command
    }

    fn spawn(&mut self, name: &str) {
        let (port, spool) = {
            let instance = self.instance(name);
            (instance.port, instance.spool.clone())
        };
        let mut log = self.log_file(name);
        let _ = writeln!(log, "--- starting {name} on port {port}");
        let child = self
            .command(name)
            .env("PORT", port.to_string())
            .env("IMPORT_SPOOL_DIR", &spool)
            .spawn()
            .expect("product-api starts");
        self.instance_mut(name).child = Some(child);
    }

    /// Waits until `name` answers 200 on `/health/ready` itself.
    pub async fn wait_ready(&mut self, name: &str) {
        let url = self.direct_url(name, "/health/ready");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.client.get(&url).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            let exited = self
                .instance_mut(name)
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!("exited with {status}: {}", self.logs_hint(name));
            }
            assert!(
                Instant::now() < deadline,
                "not ready within 30 s: {}",
                self.logs_hint(name)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the balancer routes a request to `name` (it is up in HAProxy's eyes).
    pub async fn wait_routed(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = self.lb_url("/health/live");
        loop {
            if let Ok(r) = self.client.get(&url).send().await {
                if served_by(&r) == name {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the balancer did not route to {name} within 20 s: {}",
                self.logs_hint("haproxy")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: the instance stops at once, mid-request and mid-transaction.
    pub fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.instance_mut(name).child.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (at most 30 s) for the graceful shutdown to end; its exit status.
    pub async fn terminate(&mut self, name: &str) -> ExitStatus {
        let mut child = self
            .instance_mut(name)
            .child
            .take()
            .unwrap_or_else(|| panic!("{name} is not running"));
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {name}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait for the instance") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{name} did not stop within 30 s of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts `name` again on its port and spool directory; returns once it is ready.
    pub async fn restart(&mut self, name: &str) {
        self.spawn(name);
        self.wait_ready(name).await;
    }

    /// A sample of `metric` (an unlabelled counter or gauge) from `name`'s `/metrics`.
    pub async fn metric(&self, name: &str, metric: &str) -> Option<f64> {
        let text = self
            .client
            .get(self.direct_url(name, "/metrics"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines().find_map(|line| {
            let value = line.strip_prefix(metric)?.strip_prefix(' ')?;
            value.trim().parse().ok()
        })
    }

    pub async fn db(&self) -> DatabaseConnection {
        Database::connect(&self.db_url)
            .await
            .expect("the cluster's database")
    }

    /// The single integer `n` that `sql` selects.
    pub async fn count(&self, db: &DatabaseConnection, sql: &str) -> i64 {
        db.query_one(Statement::from_string(
            db.get_database_backend(),
            sql.to_string(),
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("a row")
        .try_get::<i64>("", "n")
        .expect("n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let children = self
            .haproxy
            .iter_mut()
            .chain(self.instances.iter_mut().filter_map(|i| i.child.as_mut()));
        for child in children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The instance HAProxy sent a response from (`X-Served-By`), or empty.
pub fn served_by(response: &Response) -> String {
    response
        .headers()
        .get("x-served-by")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A seller no other test or earlier run used.
pub fn fresh_seller() -> String {
    format!("seller-{}", uuid::Uuid::new_v4().simple())
}

/// A create body with `name`.
pub fn product(name: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "description": "Made by the cluster tests",
        "price": 12.5,
        "quantity": 150,
        "category": "Cluster"
    })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn fresh_database(admin_url: &str, id: &str) -> String {
    let name = format!("pa_test_{id}");
    let admin = Database::connect(admin_url).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at TEST_DATABASE_URL={admin_url} is unreachable ({e}); run scripts/test")
    });
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the cluster's database");
    let _ = admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').expect("database URL has a path");
    format!("{base}/{name}")
}

/// Fails unless Redis at `url` answers PING.
async fn check_redis(url: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|a| a.rsplit('@').next().unwrap_or(a))
        .unwrap_or_else(|| panic!("TEST_REDIS_URL={url} is not a redis:// URL"));
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:6379")
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), async {
        let mut stream = tokio::net::TcpStream::connect(&address).await?;
        stream.write_all(b"PING\r\n").await?;
        let mut buf = [0u8; 16];
        let n = stream.read(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf[..n]).to_string())
    })
    .await;
    match answer {
        Ok(Ok(reply)) if reply.starts_with("+PONG") => {}
        other => panic!("Redis at TEST_REDIS_URL={url} is unreachable: {other:?}"),
    }
}

/// Fails unless the broker at `brokers` accepts a client.
async fn check_kafka(brokers: &str) {
    let built = tokio::time::timeout(
        Duration::from_secs(10),
        rskafka::client::ClientBuilder::new(brokers.split(',').map(str::to_owned).collect())
            .build(),
    )
    .await;
    match built {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!("the Kafka broker at KAFKA_BROKERS={brokers} is unreachable: {e}"),
        Err(_) => panic!("the Kafka broker at KAFKA_BROKERS={brokers} did not answer in 10 s"),
    }
}

/// `HAPROXY`, else `haproxy` on the `PATH` or in `/usr/sbin` (where Debian puts it).
fn haproxy_binary() -> String {
    let candidates = std::env::var("HAPROXY")
        .into_iter()
        .chain(["haproxy".to_string(), "/usr/sbin/haproxy".to_string()]);
    for candidate in candidates {
        let runs = Command::new(&candidate)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if runs {
            return candidate;
        }
    }
    panic!("haproxy is not installed: scripts/test installs it (apt-get install haproxy)");
}
