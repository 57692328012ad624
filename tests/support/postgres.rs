//! A throwaway PostgreSQL cluster for tests: `initdb` in a temporary directory (as the `postgres`
//! user when the tests run as root, since initdb refuses root), started on a free loopback port
//! with a private socket directory, stopped when dropped. Used by the store's contract tests and
//! by the integration tests; written once, included by both with `#[path]`.
//!
//! When PostgreSQL's programs are not installed the test is skipped with one line saying how to
//! install them, unless `WF_REQUIRE_ALL` is set (as `.ci/run` does): then it fails.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub url: String,
    as_postgres: bool,
    /// Serving TLS with `server.crt` (signed by `ca.crt`, for 127.0.0.1) in its directory.
    ssl: bool,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: on `PATH`, or Debian's
/// `/usr/lib/postgresql/VERSION/bin` (newest first).
fn bin_dir() -> Option<PathBuf> {
    let on_path =
        std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    for dir in on_path {
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            // A link to Debian's directory (as /usr/local/bin/initdb may be): use the real one.
            let real = std::fs::canonicalize(dir.join("initdb")).ok();
            return Some(real.and_then(|r| r.parent().map(Path::to_path_buf)).unwrap_or(dir));
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    versions.sort_by_key(|b| {
        b.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

impl Cluster {
    /// Starts a new cluster, or gives `None` (after one line saying why) when PostgreSQL is not
    /// installed. Panics when it is installed but will not start, or is required and missing.
    pub fn start() -> Option<Cluster> {
        let Some(bin) = bin_dir() else {
            let install = "install Debian's `postgresql` package (apt-get install postgresql)";
            if std::env::var_os("WF_REQUIRE_ALL").is_some() {
                panic!("PostgreSQL is required (WF_REQUIRE_ALL is set): {install}");
            }
            skip_line(&format!("skipped: PostgreSQL is not installed ({install})"));
            return None;
        };
        let as_postgres = nix::unistd::geteuid().is_root();
        let dir = tempfile::Builder::new().prefix("wf-pg-").tempdir().expect("a temporary directory");
        if as_postgres {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .expect("running as root needs the `postgres` user (Debian's postgresql package creates it)");
            std::os::unix::fs::chown(dir.path(), Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .expect("chown the cluster's directory");
        }
        let mut cluster = Cluster { bin, dir, port: 0, url: String::new(), as_postgres, ssl: false };
        let data = cluster.data();
        let out = cluster.run(
            "initdb",
            &["-D", &data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
        );
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        cluster.port = free_port();
        cluster.url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
        cluster.up();
        Some(cluster)
    }

    /// A cluster that serves TLS with a certificate for 127.0.0.1 signed by a CA of its own
    /// (`ca_cert()`), made with openssl; `None` (after one line) when openssl is missing.
    pub fn start_tls() -> Option<Cluster> {
        let have = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
        if !have {
            if std::env::var_os("WF_REQUIRE_ALL").is_some() {
                panic!("openssl is required (WF_REQUIRE_ALL is set): apt-get install openssl");
            }
            skip_line("skipped: openssl is not installed (apt-get install openssl)");
            return None;
        }
        let mut cluster = Cluster::start()?;
        let script = "set -e
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
              -out ca.crt -days 2 -subj /CN=wf-test-ca 2>/dev/null
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key \
              -out server.csr -subj /CN=127.0.0.1 2>/dev/null
            printf 'subjectAltName=IP:127.0.0.1\n' > san.ext
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt \
              -days 2 -extfile san.ext 2>/dev/null
            chmod 600 server.key";
        let out =
            Command::new("sh").args(["-c", script]).current_dir(cluster.dir.path()).output().expect("sh");
        assert!(out.status.success(), "making certificates: {}", String::from_utf8_lossy(&out.stderr));
        if cluster.as_postgres {
            let user = nix::unistd::User::from_name("postgres").ok().flatten().expect("the postgres user");
            for f in ["server.crt", "server.key"] {
                std::os::unix::fs::chown(
                    cluster.dir.path().join(f),
                    Some(user.uid.as_raw()),
                    Some(user.gid.as_raw()),
                )
                .expect("chown");
            }
        }
        cluster.down();
        cluster.ssl = true;
        cluster.up();
        Some(cluster)
    }

    /// The CA that signed a TLS cluster's certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        cmd.args(args).current_dir(self.dir.path()).stdin(Stdio::null());
        cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()))
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn up(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        if self.ssl {
            let d = self.dir.path().display();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key"
            ));
        }
        let log = self.dir.path().join("server.log").display().to_string();
        let data = self.data();
        let out = self.run("pg_ctl", &["-D", &data, "-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
        let server_log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{server_log}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once (as a crash would), keeping its data.
    pub fn down(&self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    /// Runs SQL with `psql` (from the cluster's own directory), giving its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let out = self.run("psql", &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-At", "-c", sql]);
        assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.down();
    }
}

/// Says that a test was skipped where it shows: written to the standard error itself, which the
/// test harness does not capture (the captured output of a test that passes is never shown).
pub fn skip_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}
