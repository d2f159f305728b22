//! The local default database: with no `MONGODB_URI`, Palaver runs its own MongoDB-compatible
//! server with its data under `DATA_DIR`, and stops it when it stops.
//!
//! A `mongod` on PATH is preferred; otherwise SecantusDB is installed from PyPI into a
//! virtualenv under `DATA_DIR` (once) and run as a separate process.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process, test_kill_process};
use tokio::process::{Child, Command};

const SECANTUS: &str = "SecantusDB==0.7.0b3";

#[derive(Debug)]
pub struct LocalDatabase {
    child: Child,
    pid_file: PathBuf,
    pub uri: String,
}

impl LocalDatabase {
    pub async fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let storage = data_dir.join("db");
        std::fs::create_dir_all(&storage)
            .with_context(|| format!("creating {}", storage.display()))?;
        let pid_file = data_dir.join("db.pid");
        stop_stale(&pid_file);

        let port = free_port()?;
        let mut command = match which("mongod") {
            Some(mongod) => {
                tracing::info!("starting mongod with data in {}", storage.display());
                let mut c = Command::new(mongod);
                c.arg("--dbpath")
                    .arg(&storage)
                    .args(["--bind_ip", "127.0.0.1", "--port"]);
                c
            }
            None => {
                let server = install_secantus(data_dir).await?;
                tracing::info!("starting SecantusDB with data in {}", storage.display());
                let mut c = Command::new(server);
                // Durable mode: each commit is synced before it is acknowledged, so what a
                // client was told is stored survives a crash (mongod journals by default).
                c.args([
                    "--host",
                    "127.0.0.1",
                    "--log-level",
                    "WARNING",
                    "--sync-on-commit",
                    "--storage-path",
                ])
                .arg(&storage)
                .arg("--port");
                c
            }
        };
        command
            .arg(port.to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let mut child = command.spawn().context("starting the local database")?;
        if let Some(pid) = child.id() {
            std::fs::write(&pid_file, pid.to_string())?;
        }
        wait_until_listening(&mut child, port).await?;
        tracing::info!("local database ready on 127.0.0.1:{port}");
        Ok(Self {
            child,
            pid_file,
            uri: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
        })
    }

    /// Stop the database cleanly (SIGTERM, so it can checkpoint), killing it if it hangs.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|p| Pid::from_raw(p as i32)) {
            let _ = kill_process(pid, Signal::TERM);
        }
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!("local database did not stop in time; killing it");
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// A database left running by a crashed Palaver still holds the storage; stop it first.
fn stop_stale(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    else {
        return;
    };
    let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| {
            let cmd = String::from_utf8_lossy(&cmd);
            cmd.contains("secantusd") || cmd.contains("mongod")
        })
        .unwrap_or(false);
    if let (true, Some(pid)) = (ours, Pid::from_raw(pid)) {
        tracing::warn!("stopping a local database left running by an earlier run (pid {pid:?})");
        let _ = kill_process(pid, Signal::TERM);
        for _ in 0..100 {
            if test_kill_process(pid).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = std::fs::remove_file(pid_file);
}

async fn install_secantus(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let venv = std::path::absolute(data_dir.join("venv"))?;
    let server = venv.join("bin").join("secantusd-py");
    if server.exists() {
        return Ok(server);
    }
    let python = which("python3").context("no mongod and no python3 on PATH to install one")?;
    tracing::info!(
        "first start: installing {SECANTUS} into {} (this takes a minute)",
        venv.display()
    );
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv)).await?;
    run(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", SECANTUS])).await?;
    Ok(server)
}

async fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .await
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

async fn wait_until_listening(child: &mut Child, port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    for _ in 0..600 {
        if let Some(status) = child.try_wait()? {
            bail!("the local database exited at start-up with {status}");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the local database did not listen on {addr} within 60 s")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}
