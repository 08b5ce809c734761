//! Export-queue transitions per second: a checker asks for changes and the researcher
//! resubmits (`checked → changes_requested → checked`) on 400 free-form requests in turn, each
//! move one durable transaction with its role check, decision, status change and hash-chained
//! audit entry, on each store, against the least a durable move can cost there: one `UPDATE` and
//! one `INSERT` in one transaction, on SQLite with the same settings (WAL, `synchronous =
//! FULL`) and on the same PostgreSQL server (every commit synced, writers serialised by one
//! transaction-level advisory lock, as the store does).

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ringfence::job::{JobRequest, ModuleSource};
use ringfence::policy::Policy;
use ringfence::queue::{ExportQueue, Verdict};
use ringfence::sandbox::Sandbox;
use ringfence::store::Database;
use ringfence::tokens::Actor;
use rusqlite::{Connection, TransactionBehavior};

/// The store's own advisory write lock, for the bare PostgreSQL reference.
const WRITE_LOCK: i64 = 0x7269_6e67_0001;

fn transitions(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = common::postgres::Server::start_durable();
    let mut group = c.benchmark_group("queue_transitions");
    group.throughput(Throughput::Elements(2));
    let (carol, alice) =
        (Actor::on_behalf_of("carol", "operator:bench"), Actor::on_behalf_of("alice", "operator:bench"));
    for store in ["sqlite", "postgres"] {
        let home = dir.path().join(store);
        if store == "postgres" {
            Database::attach(&home, &server.database()).expect("attach");
        }
        common::demo_home(&home, 20_000);
        let mut queue = ExportQueue::connect(&home).expect("queue");
        let requests = checked_requests(&mut queue);
        let mut next = requests.iter().cycle();
        group.bench_function(format!("ringfence_request_changes_and_resubmit/{store}"), |b| {
            b.iter(|| {
                let &request = next.next().expect("a request");
                queue.decide(request, &carol, Verdict::RequestChanges, Some("say which table")).expect("decide");
                queue.resubmit(request, &alice).expect("resubmit");
            })
        });
    }

    let mut conn = Connection::open(dir.path().join("bare.sqlite")).expect("bare database");
    conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
    conn.pragma_update(None, "synchronous", "FULL").expect("synchronous");
    conn.execute_batch(
        "CREATE TABLE requests (id INTEGER PRIMARY KEY, status TEXT NOT NULL);
         CREATE TABLE log (id INTEGER PRIMARY KEY, request INTEGER NOT NULL, status TEXT NOT NULL);
         INSERT INTO requests (id, status) VALUES (1, 'checked');",
    )
    .expect("schema");
    group.bench_function("bare_update_and_insert/sqlite", |b| {
        b.iter(|| {
            for status in ["changes_requested", "checked"] {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).expect("begin");
                tx.execute("UPDATE requests SET status = ?1 WHERE id = 1", [status]).expect("update");
                tx.execute("INSERT INTO log (request, status) VALUES (1, ?1)", [status]).expect("insert");
                tx.commit().expect("commit");
            }
        })
    });

    let mut client = postgres::Client::connect(&server.database(), postgres::NoTls).expect("bare database");
    client
        .batch_execute(
            "CREATE TABLE requests (id BIGINT PRIMARY KEY, status TEXT NOT NULL);
             CREATE TABLE log (id BIGSERIAL PRIMARY KEY, request BIGINT NOT NULL, status TEXT NOT NULL);
             INSERT INTO requests (id, status) VALUES (1, 'checked');",
        )
        .expect("schema");
    let update = client.prepare("UPDATE requests SET status = $1 WHERE id = 1").expect("prepare");
    let insert = client.prepare("INSERT INTO log (request, status) VALUES (1, $1)").expect("prepare");
    group.bench_function("bare_update_and_insert/postgres", |b| {
        b.iter(|| {
            for status in ["changes_requested", "checked"] {
                let mut tx = client.transaction().expect("begin");
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]).expect("lock");
                tx.execute(&update, &[&status]).expect("update");
                tx.execute(&insert, &[&status]).expect("insert");
                tx.commit().expect("commit");
            }
        })
    });
    group.finish();
}

/// Jobs of 20 small files each, whose 400 checked requests the benchmark takes turns with, so
/// that no request piles up an unrealistic history of decisions.
fn checked_requests(queue: &mut ExportQueue) -> Vec<i64> {
    let sandbox = Sandbox::new(&queue.home().module_cache_dir()).expect("sandbox");
    let wasm = common::guest("escape");
    let today = chrono::Utc::now().date_naive();
    let policy = Policy::load(
        &queue.registry().policy_file("demo-2026-001"),
        &common::caps(queue.home().root()),
        queue.catalog(),
        today,
    )
    .expect("demo policy");
    let args: Vec<String> = std::iter::once("export".to_string())
        .chain((0..20).flat_map(|i| [format!("note{i}.txt"), "a note".to_string()]))
        .collect();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let request =
            JobRequest { policy: &policy, user: "alice", module: ModuleSource::Submitted(&wasm), args: &args };
        let run = queue.run_job(&sandbox, &request, today).expect("job");
        ids.extend(run.requests.iter().map(|r| r.id));
    }
    assert_eq!(ids.len(), 400);
    ids
}

criterion_group!(benches, transitions);
criterion_main!(benches);
