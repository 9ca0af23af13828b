//! The app as a child process: started with the sidecar's coordinates in its
//! environment, sent the signals the sidecar receives, and waited for.

use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long the app gets to exit after a forwarded stop signal before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The coordinates handed to the app, under Dapr's names.
pub struct AppEnvironment {
    /// `DAPR_HTTP_PORT`.
    pub http_port: u16,
    /// `DAPR_GRPC_PORT`.
    pub grpc_port: u16,
    /// `APP_ID`.
    pub app_id: String,
    /// `APP_PORT`, when the app listens.
    pub app_port: Option<u16>,
}

/// A running app.
pub struct AppProcess {
    child: Child,
    pid: Pid,
}

impl AppProcess {
    /// Starts `command` in a process group of its own, so a terminal's Ctrl-C
    /// reaches the sidecar only, and the sidecar forwards it exactly once.
    pub fn spawn(command: &[String], env: &AppEnvironment) -> anyhow::Result<Self> {
        let (program, args) = command.split_first().context("the app command is empty")?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env("DAPR_HTTP_PORT", env.http_port.to_string())
            .env("DAPR_GRPC_PORT", env.grpc_port.to_string())
            .env("APP_ID", &env.app_id)
            .process_group(0)
            .kill_on_drop(true);
        if let Some(port) = env.app_port {
            cmd.env("APP_PORT", port.to_string());
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start the app `{program}`"))?;
        let raw = child
            .id()
            .context("the app exited before it could be tracked")?;
        let pid = Pid::from_raw(i32::try_from(raw).context("pid out of range")?);
        Ok(AppProcess { child, pid })
    }

    /// Sends `signal` to the app's process group.
    pub fn signal(&self, signal: Signal) {
        if let Err(err) = killpg(self.pid, signal) {
            tracing::debug!(%signal, error = %err, "could not signal the app");
        }
    }

    /// Waits for the app to exit.
    pub async fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        Ok(self.child.wait().await?)
    }

    /// Asks the app to stop with `signal`, kills it after [`STOP_GRACE`].
    pub async fn stop(&mut self, signal: Signal) -> anyhow::Result<ExitStatus> {
        self.signal(signal);
        match tokio::time::timeout(STOP_GRACE, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                tracing::warn!("the app did not exit within {STOP_GRACE:?}; killing it");
                self.signal(Signal::SIGKILL);
                Ok(self.child.wait().await?)
            }
        }
    }
}

/// The exit code a shell would report for `status`: the app's code, or 128 +
/// the signal that ended it.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1)
}
