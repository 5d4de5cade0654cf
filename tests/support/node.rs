//! A harness for node tests and the load bench: real `bitsage-host serve`
//! and `worker` processes, a real PostgreSQL server, HTTP over loopback.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// The `bitsage-host` binary: `$BITSAGE_HOST_BIN`, or the one in the test
/// executable's profile dir, or the dev build (`cargo build -p bitsage-host`;
/// benches run in the release profile but use it too, since the node's work
/// is I/O and its dependencies are optimised in the dev profile).
pub fn host_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BITSAGE_HOST_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile = exe.parent().and_then(|d| d.parent()).expect("target/<profile>");
    let candidates = [profile.join("bitsage-host"), profile.with_file_name("debug").join("bitsage-host")];
    // The newer build when both exist: a stale one lacks today's routes.
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    candidates.iter().filter(|p| p.exists()).max_by_key(|p| modified(p)).cloned().unwrap_or_else(|| {
        panic!("{} is missing; build it first with `cargo build -p bitsage-host`", candidates[0].display())
    })
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("bitsage-{tag}-{}-{:x}", std::process::id(), rand_u64()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

/// A `bitsage-host` child process, killed on drop.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    /// `kill -9`.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A running `bitsage-host serve`.
pub struct Node {
    pub proc: Proc,
    pub url: String,
    pub data: PathBuf,
}

/// Starts `bitsage-host serve` on a free loopback port with `args`, and
/// waits until it listens.
pub fn serve(data: &Path, args: &[&str]) -> Node {
    serve_with_env(data, args, &[])
}

/// `serve` with extra environment variables.
pub fn serve_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Node {
    let mut cmd = Command::new(host_bin());
    cmd.envs(env.iter().copied());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(data).args(args);
    // The tests poll fast; only the rate-limit test keeps the limit low.
    if !args.contains(&"--rate-limit") {
        cmd.args(["--rate-limit", "1000000", "--rate-burst", "100000"]);
    }
    cmd.env_remove("BITSAGE_DATABASE_URL").env("BITSAGE_LOG", "warn");
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("spawning bitsage-host serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("reading serve's first line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve did not start: {line:?}"))
        .to_string();
    Node { proc: Proc { child }, url, data: data.to_path_buf() }
}

/// Starts `bitsage-host worker` against a PostgreSQL URL.
pub fn worker(data: &Path, db: &str, args: &[&str]) -> Proc {
    let mut cmd = Command::new(host_bin());
    cmd.args(["worker", "--data-dir"]).arg(data).args(["--db", db]).args(args);
    cmd.env("BITSAGE_LOG", "warn").stdout(Stdio::null()).stderr(Stdio::inherit());
    Proc { child: cmd.spawn().expect("spawning bitsage-host worker") }
}

/// Creates an API key with the CLI (`db` for a PostgreSQL store).
pub fn apikey(data: &Path, db: Option<&str>, name: &str, role: &str) -> String {
    let mut cmd = Command::new(host_bin());
    cmd.args(["apikey", "--data-dir"]).arg(data);
    if let Some(db) = db {
        cmd.args(["--db", db]);
    }
    let out = cmd.args(["create", "--name", name, "--role", role]).output().expect("bitsage-host apikey create");
    assert!(out.status.success(), "apikey create failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_string()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// An HTTP answer: status, headers we check, body.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The typed error kind of an error answer.
    pub fn kind(&self) -> String {
        self.json()["error"]["kind"].as_str().unwrap_or_default().to_string()
    }
}

fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut r = r.expect("HTTP request");
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = r.body_mut().with_config().limit(256 << 20).read_to_vec().expect("body");
    Answer { status, retry_after, body }
}

pub fn get(url: &str, key: Option<&str>) -> Answer {
    let mut req = agent().get(url);
    if let Some(k) = key {
        req = req.header("Authorization", &format!("Bearer {k}"));
    }
    answer(req.call())
}

pub fn post(url: &str, key: Option<&str>, content_type: &str, body: &[u8], headers: &[(&str, &str)]) -> Answer {
    let mut req = agent().post(url).header("Content-Type", content_type);
    if let Some(k) = key {
        req = req.header("Authorization", &format!("Bearer {k}"));
    }
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    answer(req.send(body))
}

pub fn post_json(url: &str, key: Option<&str>, body: &Value) -> Answer {
    post(url, key, "application/json", &serde_json::to_vec(body).expect("json"), &[])
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Node {
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Approves guest `name` (operator key); returns its digest.
    pub fn approve(&self, op: &str, name: &str) -> String {
        let a = post_json(
            &self.at("/v1/modules"),
            Some(op),
            &json!({ "name": name, "module": b64(&crate::guests::bytes(name)) }),
        );
        assert_eq!(a.status, 201, "approving {name}: {}", String::from_utf8_lossy(&a.body));
        a.json()["digest"].as_str().expect("digest").to_string()
    }

    /// Submits a job; returns the answer.
    pub fn submit(&self, key: &str, body: &Value) -> Answer {
        post_json(&self.at("/v1/jobs"), Some(key), body)
    }

    /// Submits a job that must be accepted (202); returns its id.
    pub fn submit_accepted(&self, key: &str, body: &Value) -> String {
        let a = self.submit(key, body);
        assert_eq!(a.status, 202, "submit: {}", String::from_utf8_lossy(&a.body));
        a.json()["id"].as_str().expect("id").to_string()
    }

    pub fn job(&self, key: &str, id: &str) -> Value {
        let a = get(&self.at(&format!("/v1/jobs/{id}")), Some(key));
        assert_eq!(a.status, 200, "GET job {id}: {}", String::from_utf8_lossy(&a.body));
        a.json()
    }

    /// Polls (every 50 ms) until the job is in a final state.
    pub fn wait(&self, key: &str, id: &str, timeout: Duration) -> Value {
        self.wait_every(key, id, timeout, Duration::from_millis(50))
    }

    pub fn wait_every(&self, key: &str, id: &str, timeout: Duration, every: Duration) -> Value {
        let t0 = Instant::now();
        loop {
            let j = self.job(key, id);
            if matches!(j["state"].as_str(), Some("proved" | "executed" | "failed" | "settled")) {
                return j;
            }
            assert!(t0.elapsed() < timeout, "job {id} still {} after {timeout:?}", j["state"]);
            std::thread::sleep(every);
        }
    }
}

/// A throwaway PostgreSQL server on a loopback port (Debian's packages:
/// `initdb` and `postgres` from /usr/lib/postgresql/<version>/bin). As
/// root, it runs as the `postgres` user, since PostgreSQL refuses root.
pub struct Postgres {
    pub url: String,
    proc: Proc,
    dir: TempDir,
}

fn pg_bin(tool: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    versions.sort();
    let bin = versions.last().map(|v| v.join("bin").join(tool));
    match bin {
        Some(b) if b.exists() => b,
        _ => panic!("PostgreSQL's {tool} is not installed (Debian package `postgresql`; scripts/setup.sh installs it)"),
    }
}

/// True when the tests run as root (CI containers do).
fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn as_postgres_user(tool: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = TempDir::new("pg");
        let data = dir.0.join("data");
        if is_root() {
            let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir.0).status().expect("chown");
            assert!(ok.success(), "chown of the PostgreSQL temp dir failed");
        }
        let out = as_postgres_user(&pg_bin("initdb"))
            .args(["-D"])
            .arg(&data)
            .args(["-U", "bitsage", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let port = free_port();
        let child = as_postgres_user(&pg_bin("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c"])
            .arg(format!("unix_socket_directories={}", dir.0.display()))
            .args(["-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting postgres");
        let pg = Postgres { url: format!("postgres://bitsage@127.0.0.1:{port}/postgres"), proc: Proc { child }, dir };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t0.elapsed() < Duration::from_secs(30), "postgres did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Accepting TCP precedes accepting logins by a moment.
        std::thread::sleep(Duration::from_millis(500));
        pg
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir.0
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.proc.kill9();
    }
}
