//! A real InfluxDB (Debian's `influxdb`, 1.x) on loopback ports, with its data in a
//! temporary folder: started, stopped and started again by the tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::tools;

pub struct InfluxDb {
    pub http_port: u16,
    rpc_port: u16,
    dir: PathBuf,
    binary: PathBuf,
    child: Option<Child>,
}

impl InfluxDb {
    /// Starts influxd, or None (skipped, saying so) where it is not installed.
    pub async fn start() -> Option<InfluxDb> {
        let binary = tools::tool("influxd", "influxdb")?;
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("livegames-influxdb-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut db = InfluxDb {
            http_port: super::free_port(),
            rpc_port: super::free_port(),
            dir,
            binary,
            child: None,
        };
        db.write_config();
        db.resume().await;
        Some(db)
    }

    fn write_config(&self) {
        let d = self.dir.display();
        let config = format!(
            "reporting-disabled = true\n\
             bind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{d}/meta\"\n\
             [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n\
             [continuous_queries]\n  enabled = false\n",
            rpc = self.rpc_port,
            http = self.http_port
        );
        std::fs::write(self.dir.join("influxdb.conf"), config).unwrap();
    }

    pub fn url(&self, database: &str) -> String {
        format!("http://127.0.0.1:{}/{database}", self.http_port)
    }

    /// Starts (again) on the same ports and data, and waits until it answers /ping.
    pub async fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.join("influxd.log")).unwrap();
        let child = Command::new(&self.binary)
            .arg("-config")
            .arg(self.dir.join("influxdb.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("influxd starts");
        self.child = Some(child);
        let ping = format!("http://127.0.0.1:{}/ping", self.http_port);
        let started = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(&ping).await
                && r.status().as_u16() == 204
            {
                return;
            }
            let log = std::fs::read_to_string(self.dir.join("influxd.log")).unwrap_or_default();
            assert!(
                started.elapsed() < super::DEADLINE,
                "influxd did not answer /ping: {log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the process (its data stays for `resume`).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// An InfluxQL query's first series, as `{columns, values}`; Null when empty.
    pub async fn query(&self, database: &str, q: &str) -> Value {
        let body: Value = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/query", self.http_port))
            .query(&[("db", database), ("q", q), ("epoch", "ns")])
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("a JSON answer");
        body["results"][0]["series"][0].clone()
    }

    /// `SELECT count(FIELD) FROM M WHERE ...`, 0 when nothing matches.
    pub async fn count(&self, database: &str, measurement: &str, field: &str, filter: &str) -> u64 {
        let q = format!("SELECT count(\"{field}\") FROM \"{measurement}\" {filter}");
        self.query(database, &q).await["values"][0][1]
            .as_u64()
            .unwrap_or(0)
    }
}

impl Drop for InfluxDb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
