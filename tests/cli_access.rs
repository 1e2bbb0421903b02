//! `waferscope users …` and `waferscope audit …` as an administrator uses
//! them at the console: users added with their password on standard input,
//! listed without any hash; every change in the audit trail, whose chain
//! `audit --verify` checks: an entry edited or deleted behind the station's
//! back (triggers dropped, as anyone with the file could) exits 9 naming
//! it. No password and no hash ever reaches the CSV export or the logs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const ROOT_PASSWORD: &str = "root secret 1";
const ALICE_PASSWORD: &str = "alice secret 2";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "waferscope-cli-access-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `waferscope --data-dir d ARGS`, with `stdin` as its standard input.
fn ws(d: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .current_dir(d)
        .env("USER", "tester")
        .arg("--data-dir")
        .arg(d)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command that reads nothing may have exited already: a broken pipe
    // here is no failure of the test.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(d: &Path, args: &[&str], stdin: &str) -> String {
    let o = ws(d, args, stdin);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(d: &Path, args: &[&str], stdin: &str, code: i32) -> String {
    let o = ws(d, args, stdin);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
    text(&o)
}

/// An administrator and an engineer, added as an administrator would.
fn two_users(d: &Path) {
    ok(
        d,
        &["users", "add", "root", "--role", "administrator"],
        &format!("{ROOT_PASSWORD}\n"),
    );
    ok(
        d,
        &["users", "add", "alice", "--role", "engineer"],
        &format!("{ALICE_PASSWORD}\r\n"),
    );
}

fn db(d: &Path) -> PathBuf {
    d.join("waferscope.db")
}

/// Every file under `d` but the database itself (and its WAL), read as
/// text.
fn files_but_the_database(d: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut todo = vec![d.to_owned()];
    while let Some(p) = todo.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                todo.push(path);
            } else if !name.starts_with("waferscope.db") {
                let bytes = std::fs::read(&path).unwrap();
                found.push((path, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    found
}

#[test]
fn users_added_from_stdin_are_listed_without_hashes_and_audited() {
    let d = dir("users");
    two_users(&d);
    let list = ok(&d, &["users", "list"], "");
    assert!(
        list.contains("root") && list.contains("administrator"),
        "{list}"
    );
    assert!(
        list.contains("alice") && list.contains("engineer"),
        "{list}"
    );
    assert!(
        !list.contains("$argon2") && !list.contains("secret"),
        "{list}"
    );

    // Refusals name what was wrong.
    let dup = fails(
        &d,
        &["users", "add", "alice", "--role", "operator"],
        "another password\n",
        2,
    );
    assert!(
        dup.contains("\"alice\"") && dup.contains("already exists"),
        "{dup}"
    );
    let role = fails(
        &d,
        &["users", "add", "bob", "--role", "boss"],
        "bob password\n",
        2,
    );
    assert!(role.contains("--role") && role.contains("boss"), "{role}");
    let short = fails(
        &d,
        &["users", "add", "bob", "--role", "operator"],
        "short\n",
        2,
    );
    assert!(short.contains("too short"), "{short}");
    let empty = fails(&d, &["users", "passwd", "alice"], "", 2);
    assert!(empty.contains("no password on standard input"), "{empty}");
    let last = fails(&d, &["users", "disable", "root"], "", 2);
    assert!(last.contains("last enabled administrator"), "{last}");
    let last = fails(&d, &["users", "role", "root", "operator"], "", 2);
    assert!(last.contains("last enabled administrator"), "{last}");
    let nobody = fails(&d, &["users", "enable", "nobody"], "", 2);
    assert!(nobody.contains("no user \"nobody\""), "{nobody}");

    ok(&d, &["users", "disable", "alice"], "");
    ok(&d, &["users", "enable", "alice"], "");
    ok(&d, &["users", "role", "alice", "maintenance"], "");
    ok(&d, &["users", "passwd", "alice"], "alice secret 3\n");
    let list = ok(&d, &["users", "list"], "");
    assert!(list.contains("maintenance"), "{list}");

    let verified = ok(&d, &["audit", "--verify"], "");
    assert!(
        verified.contains("audit trail verified: 11 entries, chain intact"),
        "{verified}"
    );
    let trail = ok(&d, &["audit"], "");
    for expected in [
        "console:tester",
        "user_add",
        "name=root role=administrator",
        "user_disable",
        "user_enable",
        "name=alice role=maintenance from=engineer",
        "user_passwd",
        "refused",
        "already exists",
    ] {
        assert!(trail.contains(expected), "{expected} in {trail}");
    }
    assert_eq!(trail.lines().count(), 11, "{trail}");
    let recent = ok(&d, &["audit", "--since", "1h"], "");
    assert_eq!(recent.lines().count(), 11, "{recent}");
    let none = ok(&d, &["audit", "--since", "2099-01-01T00:00:00Z"], "");
    assert_eq!(none.trim(), "no audit entries");
    let bad = fails(&d, &["audit", "--since", "yesterday"], "", 2);
    assert!(bad.contains("--since"), "{bad}");

    ok(&d, &["audit", "--csv", "trail.csv"], "");
    let csv = std::fs::read_to_string(d.join("trail.csv")).unwrap();
    assert!(
        csv.starts_with("id,at_utc,user,role,source,action,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 12, "{csv}");

    // A headless run, its KLARF and CSV, the alarm journal: the console
    // owner's run is in the trail, and none of these files (nor the logs
    // they wrote) holds a password or a hash.
    std::fs::create_dir_all(d.join("klarf")).unwrap();
    ok(
        &d,
        &[
            "run",
            "--recipe",
            "recipes/sampled-200mm.toml",
            "--lot",
            "L1",
            "--wafer",
            "W1",
            "--fast",
            "--klarf-dir",
            "klarf",
        ],
        "",
    );
    ok(
        &d,
        &[
            "export", "--run", "1", "--format", "csv", "--out", "run.csv",
        ],
        "",
    );
    ok(
        &d,
        &[
            "export",
            "--run",
            "1",
            "--format",
            "klarf18",
            "--out",
            "run.klarf",
        ],
        "",
    );
    ok(
        &d,
        &["export", "--alarm-journal", "--out", "alarms.csv"],
        "",
    );
    let trail = ok(&d, &["audit", "--since", "1h"], "");
    assert!(
        trail.lines().any(|l| l.contains("console:tester")
            && l.contains("run_start")
            && l.contains("lot=L1")),
        "{trail}"
    );
    let written: Vec<String> = files_but_the_database(&d)
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    for expected in [
        "run.csv",
        "run.klarf",
        "alarms.csv",
        "klarf/",
        "logs/waferscope.log",
    ] {
        assert!(
            written.iter().any(|p| p.contains(expected)),
            "{expected} among {written:#?}"
        );
    }
    // No password, nor any hash of one, outside the user table.
    for (path, content) in files_but_the_database(&d) {
        for secret in [ROOT_PASSWORD, ALICE_PASSWORD, "alice secret 3", "$argon2"] {
            assert!(
                !content.contains(secret),
                "{} contains {secret:?}",
                path.display()
            );
        }
    }
}

/// A trail of three entries, the connection of someone with the file (the
/// append-only triggers dropped), and the database's path.
fn tampered(name: &str) -> (PathBuf, rusqlite::Connection) {
    let d = dir(name);
    two_users(&d);
    ok(&d, &["users", "disable", "alice"], "");
    ok(&d, &["audit", "--verify"], "");
    let conn = rusqlite::Connection::open(db(&d)).unwrap();
    // Through the station's own schema the trail cannot be changed.
    let refused = conn
        .execute("UPDATE audit SET params = 'name=mallory' WHERE id = 2", [])
        .unwrap_err()
        .to_string();
    assert!(refused.contains("append-only"), "{refused}");
    conn.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    (d, conn)
}

#[test]
fn an_edited_entry_fails_verify_naming_it() {
    let (d, conn) = tampered("edited");
    conn.execute("UPDATE audit SET params = 'name=mallory' WHERE id = 2", [])
        .unwrap();
    drop(conn);
    let out = fails(&d, &["audit", "--verify"], "", 9);
    assert!(
        out.contains("audit trail broken at entry 2: its contents do not match its hash (edited)"),
        "{out}"
    );
}

#[test]
fn a_deleted_entry_fails_verify_naming_the_gap() {
    let (d, conn) = tampered("deleted");
    conn.execute("DELETE FROM audit WHERE id = 2", []).unwrap();
    drop(conn);
    let out = fails(&d, &["audit", "--verify"], "", 9);
    assert!(
        out.contains("audit trail broken at entry 3: entry 2 is missing (deleted)"),
        "{out}"
    );
}

#[test]
fn an_emptied_trail_fails_verify() {
    let (d, conn) = tampered("emptied");
    conn.execute("DELETE FROM audit", []).unwrap();
    drop(conn);
    let out = fails(&d, &["audit", "--verify"], "", 9);
    assert!(
        out.contains("audit trail broken: it is empty, yet the station has users"),
        "{out}"
    );
}
