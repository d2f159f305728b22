//! The server binary with no MONGODB_URI provisions its own database under DATA_DIR, keeps the
//! data across restarts, and stops the database when it stops.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, test_kill_process};
use serde_json::{Value, json};

use crate::common::free_port;

fn start(data_dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_palaver"))
        .env_remove("MONGODB_URI")
        .env_remove("JWT_SECRET")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_until_up(base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the server exited at start-up"
        );
        if reqwest::get(format!("{base}/users")).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the server did not come up");
}

fn stop(child: &mut Child) {
    kill_process(Pid::from_child(child), Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "clean shutdown, got {status}");
}

async fn post(base: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/new"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn data_persists_across_restarts_of_the_self_provisioned_database() {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");

    let mut server = start(data_dir.path(), port);
    wait_until_up(&base, &mut server).await;
    let (status, created) = post(&base, json!({ "username": "ada" })).await;
    assert_eq!(status, 201);
    let db_pid: i32 = std::fs::read_to_string(data_dir.path().join("db.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    stop(&mut server);

    // The database went down with the server.
    let db = Pid::from_raw(db_pid).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while test_kill_process(db).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        test_kill_process(db).is_err(),
        "the local database outlived the server"
    );

    let mut server = start(data_dir.path(), port);
    wait_until_up(&base, &mut server).await;
    let (status, login) = post(
        &base,
        json!({ "accountID": created["id"], "username": "ada" }),
    )
    .await;
    assert_eq!(status, 202, "{login}");
    assert_eq!(login["id"], created["id"]);
    // The generated signing secret was kept too: the first token still works.
    let token = created["token"].as_str().unwrap();
    let users = reqwest::Client::new()
        .get(format!(
            "{base}/users?users={}",
            created["id"].as_str().unwrap()
        ))
        .header("Authorisation", token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 200);
    stop(&mut server);
}
