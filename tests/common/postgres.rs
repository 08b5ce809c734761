//! A real PostgreSQL server for the tests: Debian's server binaries run an unprivileged cluster
//! made by `initdb` in a temporary directory, started by `pg_ctl` on a free loopback port, and
//! stopped and removed when the [`Server`] is dropped. Each test takes a database of its own.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The superuser the cluster is made with; loopback connections are trusted.
const USER: &str = "ringfence";

/// A running cluster.
pub struct Server {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    databases: AtomicU32,
}

/// The server binaries: `$RINGFENCE_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`.
fn server_binaries() -> PathBuf {
    if let Some(bin) = std::env::var_os("RINGFENCE_PG_BIN") {
        return PathBuf::from(bin);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server binaries are not installed (Debian's postgresql package; scripts/setup installs it)"
        )
    })
}

/// Runs `program`, as the `postgres` user when the tests run as root (initdb and the server
/// refuse to run as root, and the server reads only keys its user owns).
fn run(program: &Path, args: &[&str]) -> std::process::Output {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.args(args).output().unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Server {
    /// Initialises and starts a cluster that does not sync to disk: the tests kill processes,
    /// never the machine.
    pub fn start() -> Server {
        Server::start_with(false, false)
    }

    /// A cluster that syncs every commit to disk (`fsync = on`, `synchronous_commit = on`), as
    /// SQLite's `synchronous = FULL` does: for benchmarks that compare the two.
    pub fn start_durable() -> Server {
        Server::start_with(true, false)
    }

    /// A cluster that accepts TCP connections over TLS only, with a certificate for 127.0.0.1
    /// signed by a CA of its own, whose certificate is [`Server::ca_certificate`].
    pub fn start_tls_only() -> Server {
        Server::start_with(false, true)
    }

    /// The CA certificate of a [`Server::start_tls_only`] cluster.
    pub fn ca_certificate(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Makes the CA and the server's certificate and key in `dir` (as the server's user, who
    /// must own the key), and accepts TCP connections over TLS only.
    fn require_tls(dir: &Path, data: &Path) {
        let openssl = |args: &[&str]| {
            let made = run(Path::new("openssl"), args);
            assert!(made.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&made.stderr));
        };
        let file = |name: &str| dir.join(name).display().to_string();
        let (ca_key, ca, key, request, certificate, san) = (
            file("ca.key"),
            file("ca.crt"),
            file("server.key"),
            file("server.csr"),
            file("server.crt"),
            file("san.ext"),
        );
        let ca_subject = "/CN=ringfence test CA";
        openssl(&[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", ca_subject, "-keyout", &ca_key,
            "-out", &ca,
        ]);
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &key,
            "-out",
            &request,
        ]);
        std::fs::write(&san, "subjectAltName=IP:127.0.0.1\n").expect("extension");
        let sign = ["x509", "-req", "-days", "1", "-CAcreateserial", "-in", &request, "-CA", &ca, "-CAkey", &ca_key];
        openssl(&[&sign[..], &["-extfile", &san, "-out", &certificate]].concat());
        // The tests' own connections come over the socket; TCP ones must be TLS.
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n";
        std::fs::write(data.join("pg_hba.conf"), hba).expect("pg_hba.conf");
    }

    fn start_with(fsync: bool, tls: bool) -> Server {
        let fsync = if fsync { "on" } else { "off" };
        let bin = server_binaries();
        let dir = tempfile::Builder::new().prefix("ringfence-pg").tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let data = dir.path().join("data");
        let data_arg = data.to_str().expect("utf-8 path");
        let init = run(&bin.join("initdb"), &["-D", data_arg, "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"]);
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let mut settings = format!("-c listen_addresses=127.0.0.1 -c fsync={fsync} -c max_connections=300");
        if tls {
            Server::require_tls(dir.path(), &data);
            let file = |name: &str| dir.path().join(name).display().to_string();
            settings +=
                &format!(" -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}", file("server.crt"), file("server.key"));
        }
        let log = dir.path().join("server.log");
        for _ in 0..5 {
            let port = free_port();
            let options = format!("-p {port} -k {} {settings}", dir.path().display());
            let started = run(
                &bin.join("pg_ctl"),
                &["-D", data_arg, "-o", &options, "-l", log.to_str().expect("utf-8"), "-w", "-t", "60", "start"],
            );
            if started.status.success() {
                return Server { dir, bin, port, databases: AtomicU32::new(0) };
            }
        }
        panic!("the PostgreSQL server did not start: {}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// The connection string of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database; returns its connection string.
    pub fn database(&self) -> String {
        let name = format!("t{}", self.databases.fetch_add(1, Ordering::Relaxed));
        self.sql(&format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs `sql` on the `postgres` database, over the server's socket.
    pub fn sql(&self, sql: &str) -> Vec<postgres::Row> {
        let socket = format!("host={} port={} user={USER} dbname=postgres", self.dir.path().display(), self.port);
        let mut client = postgres::Client::connect(&socket, postgres::NoTls).expect("connect");
        client.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The server processes serving the connections of ringfence process `pid` (each sets its
    /// `application_name` to `ringfence <pid>`).
    pub fn backends_of(&self, pid: u32) -> Vec<i32> {
        self.sql(&format!("SELECT pid FROM pg_stat_activity WHERE application_name = 'ringfence {pid}'"))
            .iter()
            .map(|row| row.get(0))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ =
            run(&self.bin.join("pg_ctl"), &["-D", data.to_str().unwrap_or_default(), "-m", "immediate", "-w", "stop"]);
    }
}

/// Which database a test's state directories keep their state in.
pub enum Backend {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server of the test's own, with a database per state directory.
    Postgres(Server),
}

impl Backend {
    /// The embedded default.
    pub fn sqlite() -> Backend {
        Backend::Sqlite
    }

    /// A new server.
    pub fn postgres() -> Backend {
        Backend::Postgres(Server::start())
    }

    /// Makes the state directory `home` (not yet used) keep its state in a new database of
    /// its own, on PostgreSQL; on SQLite it keeps the embedded default.
    pub fn attach(&self, home: &Path) {
        if let Backend::Postgres(server) = self {
            ringfence::store::Database::attach(home, &server.database()).expect("attach the database");
        }
    }

    /// The server, on PostgreSQL.
    pub fn server(&self) -> Option<&Server> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres(server) => Some(server),
        }
    }
}

/// One `#[test]` per case and database: `on_both_stores!(case, …)` makes `on_sqlite::case` and
/// `on_postgres::case`, each calling `case(&Backend)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test] fn $case() { super::$case(&super::common::postgres::Backend::sqlite()); })*
        }
        mod on_postgres {
            $(#[test] fn $case() { super::$case(&super::common::postgres::Backend::postgres()); })*
        }
    };
}
