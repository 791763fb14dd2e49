//! The `simulate` executor: a container "runs" for a while, writes a synthetic log line per
//! interval and exits with a configured code (or a failure code at a configured rate). Only
//! timers, so thousands of groups cost little. A container's own environment can override
//! the node-wide settings, which lets one cloud run different behaviours side by side:
//! `MOCKCLOUD_RUN_MS` (milliseconds or `forever`), `MOCKCLOUD_EXIT_CODE`,
//! `MOCKCLOUD_LOG_INTERVAL_MS`. Exec runs nothing: a tiny simulated shell answers (see
//! [`SimulateExecutor::exec_interactive`]).

use std::time::Duration;

use async_trait::async_trait;
use rand::RngExt as _;
use serde::{Deserialize, Serialize};

use crate::engine::executor::{
    ExecOutput, ExecStreams, Executor, ExecutorError, Exit, GroupSpec, Output, RunContext,
    RunningContainer, Usage,
};
use crate::engine::logstore::LogStore;
use crate::engine::spec::{ContainerSpec, Main, SimulatedMain};

pub const ENV_RUN_MS: &str = "MOCKCLOUD_RUN_MS";
pub const ENV_EXIT_CODE: &str = "MOCKCLOUD_EXIT_CODE";
pub const ENV_LOG_INTERVAL_MS: &str = "MOCKCLOUD_LOG_INTERVAL_MS";

/// A timer's log interval when nothing says otherwise.
pub const DEFAULT_LOG_INTERVAL_MS: u64 = 1000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimulateConfig {
    /// How long a container runs; `None`: until it is stopped.
    pub run_ms: Option<u64>,
    /// Random extra run time, up to this.
    pub run_jitter_ms: u64,
    pub exit_code: i32,
    /// The fraction of runs that fail instead, with `failure_exit_code`.
    pub failure_rate: f64,
    pub failure_exit_code: i32,
    /// One synthetic log line per interval; 0 writes only the start and end lines.
    pub log_interval_ms: u64,
}

impl Default for SimulateConfig {
    fn default() -> Self {
        Self {
            run_ms: None,
            run_jitter_ms: 0,
            exit_code: 0,
            failure_rate: 0.0,
            failure_exit_code: 1,
            log_interval_ms: DEFAULT_LOG_INTERVAL_MS,
        }
    }
}

pub struct SimulateExecutor {
    config: SimulateConfig,
}

impl SimulateExecutor {
    pub fn new(config: SimulateConfig) -> Self {
        Self { config }
    }

    fn env<'a>(c: &'a ContainerSpec, key: &str) -> Option<&'a str> {
        c.env
            .iter()
            .rev()
            .find(|e| e.name == key)
            .map(|e| e.value.trim())
    }

    /// The run time, exit code and log interval of one run.
    fn plan(&self, c: &ContainerSpec) -> TimerPlan {
        if let Main::Simulated(main) = &c.main {
            return TimerPlan::of(main, Duration::from_millis(self.config.log_interval_ms));
        }
        let mut rng = rand::rng();
        let run = match Self::env(c, ENV_RUN_MS) {
            Some("forever") => None,
            Some(ms) => ms.parse().ok().map(Duration::from_millis),
            None => self.config.run_ms.map(|ms| {
                let jitter = if self.config.run_jitter_ms > 0 {
                    rng.random_range(0..=self.config.run_jitter_ms)
                } else {
                    0
                };
                Duration::from_millis(ms.saturating_add(jitter))
            }),
        };
        let exit = match Self::env(c, ENV_EXIT_CODE).and_then(|v| v.parse().ok()) {
            Some(code) => code,
            None if self.config.failure_rate > 0.0
                && rng.random_bool(self.config.failure_rate.clamp(0.0, 1.0)) =>
            {
                self.config.failure_exit_code
            }
            None => self.config.exit_code,
        };
        let interval = Self::env(c, ENV_LOG_INTERVAL_MS)
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.config.log_interval_ms);
        TimerPlan {
            run,
            exit_code: exit,
            log_interval: Duration::from_millis(interval),
        }
    }
}

/// What a timer standing in for a main process does: how long it runs (`None`: until it is
/// stopped), the code it exits with, and how often it writes a log line (zero: only the
/// start and end lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerPlan {
    pub run: Option<Duration>,
    pub exit_code: i32,
    pub log_interval: Duration,
}

impl TimerPlan {
    /// The plan of a timer main; `default_interval` when it names no log interval.
    pub(crate) fn of(main: &SimulatedMain, default_interval: Duration) -> Self {
        Self {
            run: main.run,
            exit_code: main.exit_code,
            log_interval: main.log_interval.unwrap_or(default_interval),
        }
    }
}

/// Runs a timer in place of container `name`'s main process (its run `restart_count` + 1):
/// a start line, a line per interval and an end line into `log`, then the planned exit.
/// The `simulate` executor runs every container so; the `process` executor the containers
/// whose main is [`Main::Simulated`]. Dropping the future stops it.
pub(crate) async fn run_timer(
    name: &str,
    restart_count: i32,
    plan: TimerPlan,
    log: &LogStore,
) -> Exit {
    let TimerPlan {
        run,
        exit_code,
        log_interval: interval,
    } = plan;
    log.push(&format!(
        "{name}: started (run {}, simulated)",
        restart_count + 1
    ));
    let start = tokio::time::Instant::now();
    let deadline = run.and_then(|d| start.checked_add(d));
    let mut n = 0u64;
    loop {
        // Line n+1 is due at start + (n+1) intervals, however late the last one was: a
        // loaded machine delays lines but never loses them.
        let due = (!interval.is_zero())
            .then(|| {
                u32::try_from(n + 1)
                    .ok()
                    .and_then(|k| interval.checked_mul(k))
                    .and_then(|d| start.checked_add(d))
            })
            .flatten();
        match (deadline, due) {
            (Some(deadline), Some(due)) if due <= deadline => {
                tokio::time::sleep_until(due).await;
            }
            (Some(deadline), _) => {
                tokio::time::sleep_until(deadline).await;
                break;
            }
            (None, Some(due)) => tokio::time::sleep_until(due).await,
            (None, None) => std::future::pending::<()>().await,
        }
        n += 1;
        log.push(&format!("{name}: line {n}"));
    }
    log.push(&format!("{name}: exiting with code {exit_code}"));
    Exit::code(exit_code)
}

#[async_trait]
impl Executor for SimulateExecutor {
    fn name(&self) -> &'static str {
        "simulate"
    }

    async fn prepare(&self, _group: &GroupSpec) -> Result<(), ExecutorError> {
        Ok(())
    }

    async fn update_volumes(&self, _group: &GroupSpec) -> Result<(), ExecutorError> {
        Ok(())
    }

    async fn run(&self, ctx: RunContext) -> Exit {
        let mut plan = self.plan(&ctx.container);
        plan.run = plan.run.map(|run| run.saturating_sub(ctx.elapsed));
        run_timer(&ctx.container.name, ctx.restart_count, plan, &ctx.log).await
    }

    /// The simulated shell understands `echo`; anything else answers with what it would run.
    async fn exec(
        &self,
        _group: &GroupSpec,
        container: &ContainerSpec,
        command: &[String],
    ) -> Result<ExecOutput, ExecutorError> {
        let output = match command.split_first() {
            Some((head, rest)) if head == "echo" || head.ends_with("/echo") => {
                format!("{}\n", rest.join(" "))
            }
            _ => format!("{}: simulated exec of {:?}\n", container.name, command),
        };
        Ok(ExecOutput {
            output: output.into_bytes(),
            exit_code: 0,
        })
    }

    /// The simulated shell of an interactive exec: `echo ARGS` prints them, `cat` copies
    /// stdin to stdout until EOF, `true`/`false` exit 0/1, `exit N` exits N, and any other
    /// command prints what it would have run (exit 0). Nothing really runs.
    async fn exec_interactive(
        &self,
        _group: &GroupSpec,
        container: &ContainerSpec,
        command: &[String],
        streams: ExecStreams,
    ) -> Result<i32, ExecutorError> {
        let ExecStreams { stdin, output, .. } = streams;
        let say = |text: String| {
            let output = output.clone();
            async move {
                output
                    .send((Output::Stdout, bytes::Bytes::from(text)))
                    .await
                    .map_err(|_| ExecutorError::ClientGone)
            }
        };
        let Some((head, rest)) = command.split_first() else {
            return Err(ExecutorError::NoCommand);
        };
        let program = head.rsplit('/').next().unwrap_or(head);
        match program {
            "echo" => say(format!("{}\n", rest.join(" "))).await.map(|()| 0),
            "true" => Ok(0),
            "false" => Ok(1),
            "exit" => Ok(rest.first().and_then(|c| c.parse().ok()).unwrap_or(0)),
            "cat" if rest.is_empty() => {
                if let Some(mut stdin) = stdin {
                    while let Some(chunk) = stdin.recv().await {
                        output
                            .send((Output::Stdout, chunk))
                            .await
                            .map_err(|_| ExecutorError::ClientGone)?;
                    }
                }
                Ok(0)
            }
            _ => say(format!(
                "{}: simulated exec of {:?}\n",
                container.name, command
            ))
            .await
            .map(|()| 0),
        }
    }

    async fn remove(&self, _group_id: &str) {}

    /// Plausible figures (`simulated_usage`).
    async fn usage(&self, running: &[RunningContainer]) -> Vec<Option<Usage>> {
        let now = jiff::Timestamp::now();
        running
            .iter()
            .map(|c| Some(simulated_usage(c, now)))
            .collect()
    }
}

/// The figures of a container with no process to measure, at `now`: a steady share of its
/// size (from 10% to 60% of its vCPUs, 20% to 50% of its memory; a quarter vCPU and 512 MiB
/// when it asked for none), chosen by its group and name, so repeated samples agree and CPU
/// time grows with the run.
pub(crate) fn simulated_usage(c: &RunningContainer, now: jiff::Timestamp) -> Usage {
    let share = stable_fraction(&c.group_id, &c.spec.name);
    let cores = c.spec.cpu.unwrap_or(0.25) * (0.1 + 0.5 * share);
    let nano_cores = (cores * 1e9) as u64;
    let ran = now.duration_since(c.started).as_secs_f64().max(0.0);
    let gib = c.spec.memory_gib.unwrap_or(0.5) * (0.2 + 0.3 * share);
    let bytes = (gib * (1u64 << 30) as f64) as u64;
    Usage {
        nano_cores,
        core_nano_seconds: (cores * ran * 1e9) as u64,
        working_set_bytes: bytes,
        rss_bytes: bytes,
    }
}

/// A number in [0, 1) that depends only on the two names (FNV-1a).
fn stable_fraction(group: &str, name: &str) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in group.bytes().chain([0]).chain(name.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::catalog::ImageEntry;
    use crate::engine::logstore::LogStore;
    use crate::engine::spec::EnvVar;

    fn ctx(env: &[(&str, &str)], log: Arc<LogStore>) -> RunContext {
        RunContext {
            group: Arc::new(GroupSpec {
                id: "eci-1".into(),
                name: "g".into(),
                volumes: vec![],
                ip: "192.168.0.1".into(),
                names: Default::default(),
                share_process_namespace: false,
            }),
            container: Arc::new(ContainerSpec {
                name: "app".into(),
                env: env
                    .iter()
                    .map(|(k, v)| EnvVar {
                        name: k.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                ..Default::default()
            }),
            image: ImageEntry::default(),
            log,
            restart_count: 0,
            elapsed: Duration::ZERO,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn runs_for_its_time_with_log_lines_and_exit_code() {
        let exec = SimulateExecutor::new(SimulateConfig {
            run_ms: Some(3500),
            exit_code: 4,
            ..Default::default()
        });
        let log = Arc::new(LogStore::new(100));
        let start = tokio::time::Instant::now();
        let exit = exec.run(ctx(&[], log.clone())).await;
        assert_eq!(exit, Exit::code(4));
        assert_eq!(start.elapsed(), Duration::from_millis(3500));
        let lines: Vec<String> = log.select(None, None).into_iter().map(|l| l.1).collect();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(lines[1], "app: line 1");

        let exit = exec
            .run(ctx(&[(ENV_RUN_MS, "10"), (ENV_EXIT_CODE, "0")], log))
            .await;
        assert_eq!(exit.code, 0);
        assert_eq!(exit.reason, "Completed");
    }

    #[tokio::test(start_paused = true)]
    async fn failure_rate_one_always_fails() {
        let exec = SimulateExecutor::new(SimulateConfig {
            run_ms: Some(1),
            failure_rate: 1.0,
            failure_exit_code: 7,
            ..Default::default()
        });
        let exit = exec.run(ctx(&[], Arc::new(LogStore::new(10)))).await;
        assert_eq!(exit.code, 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_simulated_main_overrides_the_settings_and_the_environment() {
        let exec = SimulateExecutor::new(SimulateConfig {
            run_ms: Some(5),
            exit_code: 0,
            ..Default::default()
        });
        let log = Arc::new(LogStore::new(100));
        let mut ctx = ctx(&[(ENV_EXIT_CODE, "9")], log.clone());
        Arc::make_mut(&mut ctx.container).main =
            Main::Simulated(crate::engine::spec::SimulatedMain {
                run: Some(Duration::from_millis(2500)),
                exit_code: 3,
                log_interval: Some(Duration::from_millis(1000)),
            });
        let start = tokio::time::Instant::now();
        let exit = exec.run(ctx).await;
        assert_eq!(exit, Exit::code(3));
        assert_eq!(start.elapsed(), Duration::from_millis(2500));
        let lines: Vec<String> = log.select(None, None).into_iter().map(|l| l.1).collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
    }
}
