//! The functions as Lambda runs them: each instance is its own process, polling a Runtime API that this
//! harness serves. An instance is killed with SIGKILL when its proxies ask for a crash or when an invocation
//! outlives its deadline (as Lambda ends a timed-out sandbox), and started again; the invocations it held
//! are answered as crashed (API Gateway's 502).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::sync::{oneshot, watch};

use crate::proxy::read_message;

/// How one invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The function's response document.
    Response(String),
    /// The function reported an error (an unhandled error or a panic).
    Error(String),
    /// The process died (a crash or a timeout) before it answered.
    Crashed,
}

/// How to start one function's processes.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: PathBuf,
    /// The environment, beside the Runtime API's own variables.
    pub env: Vec<(String, String)>,
    /// Where the processes' stdout and stderr go (appended).
    pub log: PathBuf,
}

/// One instance of a function: its own environment (its proxies' endpoints), and its crash requests.
pub struct InstanceSpec {
    pub env: Vec<(String, String)>,
    pub crashes: UnboundedReceiver<()>,
}

/// What happened to a function's processes.
#[derive(Debug, Default)]
pub struct Deaths {
    /// Killed because a proxy drew a crash.
    pub crashes: AtomicUsize,
    /// Killed because an invocation outlived its deadline.
    pub timeouts: AtomicUsize,
    /// Exited on their own (an init failure, a panic outside the handler): never expected.
    pub exits: AtomicUsize,
}

struct Job {
    event: String,
    timeout: Duration,
    reply: oneshot::Sender<Answer>,
}

/// A function: its instances, and the queue they take invocations from.
pub struct Function {
    pub name: String,
    queue: mpsc::UnboundedSender<Job>,
    pub deaths: Arc<Deaths>,
    stop: watch::Sender<bool>,
}

impl Function {
    /// Start one process of `spec` per instance: each with its own environment beside the spec's (its
    /// proxies), and the channel its crash requests come on.
    pub async fn start(spec: FunctionSpec, instances: Vec<InstanceSpec>) -> std::io::Result<Self> {
        let (queue, jobs) = mpsc::unbounded_channel();
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        let deaths = Arc::new(Deaths::default());
        let (stop, stopped) = watch::channel(false);
        for (index, InstanceSpec { env, crashes: crash_requests }) in instances.into_iter().enumerate() {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            let instance = Arc::new(Instance::new(&spec.name, index));
            tokio::spawn(serve_runtime_api(listener, instance.clone(), jobs.clone()));
            let mut spec = spec.clone();
            spec.env.extend(env);
            let supervisor = Supervisor { spec, port, instance, deaths: deaths.clone() };
            tokio::spawn(supervisor.run(crash_requests, stopped.clone()));
        }
        Ok(Self { name: spec.name, queue, deaths, stop })
    }

    /// Invoke the function with `event`; its deadline is `timeout` after an instance takes it.
    pub async fn invoke(&self, event: String, timeout: Duration) -> Answer {
        let (reply, answer) = oneshot::channel();
        let job = Job { event, timeout, reply };
        if self.queue.send(job).is_err() {
            return Answer::Crashed;
        }
        answer.await.unwrap_or(Answer::Crashed)
    }

    /// Kill every process for good.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

/// One instance: the invocations its process holds, and which process (generation) that is.
struct Instance {
    arn: String,
    state: Mutex<InstanceState>,
    generation: watch::Sender<u64>,
}

#[derive(Default)]
struct InstanceState {
    generation: u64,
    in_flight: HashMap<String, (Instant, oneshot::Sender<Answer>)>,
}

static REQUEST_IDS: AtomicU64 = AtomicU64::new(1);

impl Instance {
    fn new(function: &str, index: usize) -> Self {
        Self {
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function}-{index}"),
            state: Mutex::new(InstanceState::default()),
            generation: watch::channel(0).0,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, InstanceState> {
        self.state.lock().expect("instance state lock")
    }

    /// The process is dead: a new generation begins and every invocation it held is answered as crashed.
    fn buried(&self) {
        let mut state = self.state();
        state.generation += 1;
        for (_, (_, reply)) in state.in_flight.drain() {
            let _ = reply.send(Answer::Crashed);
        }
        self.generation.send_replace(state.generation);
    }

    fn answer(&self, request_id: &str, answer: Answer) {
        if let Some((_, reply)) = self.state().in_flight.remove(request_id) {
            let _ = reply.send(answer);
        }
    }

    fn overdue(&self) -> bool {
        let now = Instant::now();
        self.state().in_flight.values().any(|(deadline, _)| *deadline <= now)
    }
}

/// Starts an instance's process, and starts it again each time it dies.
struct Supervisor {
    spec: FunctionSpec,
    port: u16,
    instance: Arc<Instance>,
    deaths: Arc<Deaths>,
}

impl Supervisor {
    async fn run(self, mut crash_requests: UnboundedReceiver<()>, mut stop: watch::Receiver<bool>) {
        loop {
            let Ok(mut child) = self.spawn() else {
                eprintln!("chaos: could not start {}", self.spec.binary.display());
                return;
            };
            let death = tokio::select! {
                _ = child.wait() => Some(&self.deaths.exits),
                Some(()) = crash_requests.recv() => Some(&self.deaths.crashes),
                () = overdue(&self.instance) => Some(&self.deaths.timeouts),
                _ = stop.wait_for(|stopped| *stopped) => None,
            };
            kill(&mut child).await;
            self.instance.buried();
            let Some(death) = death else { return };
            death.fetch_add(1, Ordering::Relaxed);
            // Crashes the dead process's calls asked for are done with.
            while crash_requests.try_recv().is_ok() {}
        }
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.spec.log)?;
        Command::new(&self.spec.binary)
            .env_clear()
            .envs(std::env::vars().filter(|(name, _)| name == "PATH" || name == "HOME"))
            .envs(self.spec.env.iter().cloned())
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", self.port))
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "chaos")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", self.spec.name))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
    }
}

async fn kill(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// Resolves when an invocation the instance holds has outlived its deadline.
async fn overdue(instance: &Instance) {
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if instance.overdue() {
            return;
        }
    }
}

/// The Runtime API of one instance: `next`, `response`, `error` and `init/error`, keep-alive.
async fn serve_runtime_api(
    listener: TcpListener,
    instance: Arc<Instance>,
    jobs: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let (instance, jobs) = (instance.clone(), jobs.clone());
        tokio::spawn(async move {
            let _ = serve_connection(stream, &instance, &jobs).await;
        });
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    instance: &Instance,
    jobs: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
) -> std::io::Result<()> {
    // The process that opened this connection is the instance's current generation.
    let generation = instance.state().generation;
    loop {
        let request = read_message(&mut stream).await?;
        let line = request.start_line().to_owned();
        let path = line.split(' ').nth(1).unwrap_or_default();
        if path.ends_with("/runtime/invocation/next") {
            let Some(job) = next_job(instance, generation, jobs).await else { return Ok(()) };
            let request_id = format!("chaos-{}", REQUEST_IDS.fetch_add(1, Ordering::Relaxed));
            let deadline = Instant::now() + job.timeout;
            let deadline_ms = chrono::Utc::now().timestamp_millis() + job.timeout.as_millis() as i64;
            {
                let mut state = instance.state();
                if state.generation != generation {
                    let _ = job.reply.send(Answer::Crashed);
                    return Ok(());
                }
                state.in_flight.insert(request_id.clone(), (deadline, job.reply));
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {request_id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline_ms}\r\nLambda-Runtime-Invoked-Function-Arn: {}\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\nContent-Length: {}\r\n\r\n",
                instance.arn,
                job.event.len()
            );
            if let Err(e) = stream.write_all([head.as_bytes(), job.event.as_bytes()].concat().as_slice()).await {
                instance.answer(&request_id, Answer::Crashed);
                return Err(e);
            }
            continue;
        }
        let body = String::from_utf8_lossy(request.body()).into_owned();
        let mut parts = path.trim_end_matches('/').rsplit('/');
        match (parts.next(), parts.next()) {
            (Some("response"), Some(request_id)) => instance.answer(request_id, Answer::Response(body)),
            (Some("error"), Some(request_id)) if request_id != "init" => {
                instance.answer(request_id, Answer::Error(body))
            }
            _ => {} // init/error: the process exits next, and its supervisor starts another.
        }
        stream.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}").await?;
    }
}

/// The next invocation for this process, or none if the process died while it waited.
async fn next_job(
    instance: &Instance,
    generation: u64,
    jobs: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
) -> Option<Job> {
    let mut generations = instance.generation.subscribe();
    tokio::select! {
        job = async { jobs.lock().await.recv().await } => job,
        _ = generations.wait_for(|current| *current != generation) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function as a Python script against the Runtime API: it answers `{"echo": <event>}`, or sleeps
    /// 10 s first when the event is `"slow"`; it appends one line to `starts` at each start.
    fn echo_function(dir: &std::path::Path) -> FunctionSpec {
        let script = dir.join("echo.py");
        std::fs::write(
            &script,
            r#"import json, os, sys, time, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
open(os.environ["STARTS"], "a").write("start\n")
while True:
    with urllib.request.urlopen(api + "next") as r:
        request_id, event = r.headers["Lambda-Runtime-Aws-Request-Id"], json.load(r)
        assert int(r.headers["Lambda-Runtime-Deadline-Ms"]) > time.time() * 1000
    if event == "slow":
        time.sleep(10)
    body = json.dumps({"echo": event}).encode()
    urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=body, method="POST")).read()
"#,
        )
        .unwrap();
        let launcher = dir.join("echo");
        std::fs::write(&launcher, format!("#!/bin/sh\nexec python3 {}\n", script.display())).unwrap();
        let mut permissions = std::fs::metadata(&launcher).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&launcher, permissions).unwrap();
        FunctionSpec {
            name: "echo".into(),
            binary: launcher,
            env: vec![("STARTS".into(), dir.join("starts").display().to_string())],
            log: dir.join("echo.log"),
        }
    }

    #[tokio::test]
    async fn an_instance_answers_is_killed_at_a_crash_or_its_deadline_and_starts_again() {
        let dir = std::env::temp_dir().join(format!("chaos-lambda-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (crash, crashes) = mpsc::unbounded_channel();
        let function =
            Function::start(echo_function(&dir), vec![InstanceSpec { env: Vec::new(), crashes }]).await.unwrap();
        let timeout = Duration::from_secs(5);
        assert_eq!(function.invoke("\"a\"".into(), timeout).await, Answer::Response("{\"echo\": \"a\"}".into()));

        // A crash asked for while an invocation is held: it is answered as crashed, the process restarted.
        let held = tokio::spawn({
            let function = Arc::new(function);
            let f = function.clone();
            async move { (f.invoke("\"slow\"".into(), Duration::from_secs(30)).await, function) }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        crash.send(()).unwrap();
        let (answer, function) = tokio::time::timeout(Duration::from_secs(5), held).await.expect("answered").unwrap();
        assert_eq!(answer, Answer::Crashed);
        assert_eq!(function.invoke("\"b\"".into(), timeout).await, Answer::Response("{\"echo\": \"b\"}".into()));

        // An invocation past its deadline is killed, as Lambda ends a timed-out sandbox.
        let late = tokio::time::timeout(
            Duration::from_secs(5),
            function.invoke("\"slow\"".into(), Duration::from_millis(300)),
        );
        assert_eq!(late.await.expect("answered"), Answer::Crashed);
        assert_eq!(function.invoke("\"c\"".into(), timeout).await, Answer::Response("{\"echo\": \"c\"}".into()));

        assert_eq!(function.deaths.crashes.load(Ordering::Relaxed), 1);
        assert_eq!(function.deaths.timeouts.load(Ordering::Relaxed), 1);
        assert_eq!(function.deaths.exits.load(Ordering::Relaxed), 0);
        let starts = std::fs::read_to_string(dir.join("starts")).unwrap();
        assert_eq!(starts.lines().count(), 3, "started, then again after each kill");
        function.stop();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
