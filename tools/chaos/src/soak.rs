//! One soak: the table and queues on moto, a fault proxy per instance and service, the functions as
//! processes, the traffic with each provider's retries, the sweeper on a compressed schedule, then the final
//! sweep (faults off), the audit and the figures. The history (every AWS call's fault, every send) is
//! written beside the functions' logs.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use payhooks::Provider;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::Semaphore;

use crate::audit::{self, Findings, Sent};
use crate::lambda::{Answer, Function, FunctionSpec, InstanceSpec};
use crate::proxy::{Fault, FaultPlan, Proxy};
use crate::traffic::{self, Callback, Mix, RetryPolicy};

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mix: Mix,
    pub seed: u64,
    /// The share of AWS calls that get an outage (a 500, a throttle, a timeout, or applied but lost).
    pub fault_rate: f64,
    /// About one crash per this many callbacks (drawn per AWS call).
    pub crash_every: u64,
    /// Callbacks in flight at once.
    pub concurrency: usize,
    /// Processes per provider function.
    pub instances: usize,
    /// The providers' retry waits are multiplied by this.
    pub time_scale: f64,
    /// The sweeper's schedule (a minute in the template).
    pub sweep_every: Duration,
    /// The functions' timeout (the template's), each invocation's deadline.
    pub function_timeout: Duration,
    /// Where the function binaries are.
    pub bin_dir: PathBuf,
    /// Where the logs and the history go.
    pub out_dir: PathBuf,
}

/// AWS calls one callback makes, about (measured: 9 to 10 under faults): what turns `crash_every` into a
/// rate per call.
const CALLS_PER_CALLBACK: f64 = 9.0;

/// The outcome of one callback, after its provider's last send.
#[derive(Debug, Clone)]
struct Delivery {
    index: usize,
    provider: Provider,
    /// Each send's answer: the status, and the error code of a refusal (`crashed` when the process died).
    answers: Vec<(u16, String)>,
    acknowledged_ms: Option<f64>,
}

/// The figures a soak prints.
#[derive(Debug)]
pub struct Report {
    pub findings: Findings,
    pub lines: Vec<String>,
}

pub async fn run(settings: &Settings) -> Result<Report, String> {
    std::fs::create_dir_all(&settings.out_dir).map_err(|e| format!("{}: {e}", settings.out_dir.display()))?;
    let stack = Stack::create(settings.seed)?;
    let callbacks = traffic::generate(settings.mix, &mut StdRng::seed_from_u64(settings.seed));
    let fleet = Fleet::start(settings, &stack).await?;

    // The sweeper on its (compressed) schedule, while the traffic runs.
    let sweeping = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let schedule = tokio::spawn({
        let (sweeper, sweeping, every, timeout) =
            (fleet.sweeper.clone(), sweeping.clone(), settings.sweep_every, settings.function_timeout);
        async move {
            while sweeping.load(Ordering::Relaxed) {
                tokio::time::sleep(every).await;
                sweeper.invoke("{}".into(), timeout).await;
            }
        }
    });
    let started = Instant::now();
    let deliveries = send_all(settings, &callbacks, fleet.providers.clone()).await;
    let traffic_time = started.elapsed();
    sweeping.store(false, Ordering::Relaxed);
    let _ = schedule.await;

    let received = final_sweep(settings, &fleet, &stack).await?;
    fleet.stop();
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk());
    let mut messages = Vec::new();
    for (provider, url) in &stack.queues {
        messages.extend(audit::drain(&sqs, provider.name(), url).await?);
    }
    let findings = audit::audit(&sent(&callbacks, &deliveries), &messages, received.count);
    let lines = figures(settings, &callbacks, &deliveries, &fleet, &findings, traffic_time);
    write_history(settings, &callbacks, &deliveries, &fleet.proxies, &findings)?;
    Ok(Report { findings, lines })
}

/// The functions' processes, each instance behind its own proxies (one per service).
struct Fleet {
    proxies: Vec<(String, Proxy)>,
    providers: Arc<HashMap<Provider, Function>>,
    sweeper: Arc<Function>,
}

impl Fleet {
    async fn start(settings: &Settings, stack: &Stack) -> Result<Self, String> {
        let mut proxies: Vec<(String, Proxy)> = Vec::new();
        let mut providers: HashMap<Provider, Function> = HashMap::new();
        let mut sweeper = None;
        for name in Provider::ALL.iter().map(|p| p.name()).chain(["sweeper"]) {
            let instances = if name == "sweeper" { 1 } else { settings.instances };
            let mut specs = Vec::new();
            for instance in 0..instances {
                let (crashes, requests) = tokio::sync::mpsc::unbounded_channel();
                let mut env = Vec::new();
                for (service, upstream) in [("DYNAMODB", stack.dynamodb), ("SQS", stack.sqs)] {
                    let label = format!("{name}#{instance} {service}");
                    let proxy = Proxy::with_crashes(upstream, settings.plan(&label), Some(crashes.clone()))
                        .await
                        .map_err(|e| format!("starting a proxy: {e}"))?;
                    env.push((format!("AWS_ENDPOINT_URL_{service}"), proxy.url()));
                    proxies.push((label, proxy));
                }
                specs.push(InstanceSpec { env, crashes: requests });
            }
            let spec = FunctionSpec {
                name: name.to_owned(),
                binary: settings.bin_dir.join(name),
                env: stack.env.clone(),
                log: settings.out_dir.join(format!("{name}.log")),
            };
            if !spec.binary.exists() {
                return Err(format!(
                    "{} is missing: build the functions first (make chaos does)",
                    spec.binary.display()
                ));
            }
            let function = Function::start(spec, specs).await.map_err(|e| format!("starting {name}: {e}"))?;
            match Provider::ALL.into_iter().find(|p| p.name() == name) {
                Some(provider) => {
                    providers.insert(provider, function);
                }
                None => sweeper = Some(function),
            }
        }
        let sweeper = Arc::new(sweeper.ok_or("no sweeper")?);
        Ok(Self { proxies, providers: Arc::new(providers), sweeper })
    }

    fn functions(&self) -> impl Iterator<Item = &Function> {
        self.providers.values().chain([&*self.sweeper])
    }

    fn stop(&self) {
        self.functions().for_each(Function::stop);
    }
}

/// The final sweep, with no more faults or crashes: until nothing is left `RECEIVED` (the leases of the last
/// crashed deliveries, and any sweep's back-off, must pass first), or the sweeps stop making progress.
async fn final_sweep(settings: &Settings, fleet: &Fleet, stack: &Stack) -> Result<audit::Received, String> {
    for (_, proxy) in &fleet.proxies {
        proxy.calm();
    }
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk());
    let started = Instant::now();
    let (mut fewest, mut sweeps_without_progress) = (usize::MAX, 0);
    loop {
        let answer = fleet.sweeper.invoke("{}".into(), settings.function_timeout).await;
        let received = audit::still_received(&ddb, &stack.table).await?;
        if received.count < fewest {
            (fewest, sweeps_without_progress) = (received.count, 0);
        } else {
            sweeps_without_progress += 1;
        }
        // Stuck: what is left is past its lease (or back-off), and ten sweeps have completed none of it.
        let now_ms = chrono::Utc::now().timestamp_millis();
        let stuck = sweeps_without_progress >= 10 && received.latest_lease_ms < now_ms;
        if received.count == 0 || stuck || started.elapsed() > FINAL_SWEEP_LIMIT {
            if received.count > 0 {
                eprintln!("chaos: {} record(s) still RECEIVED; the last sweep ended {answer:?}", received.count);
            }
            return Ok(received);
        }
        tokio::time::sleep(settings.sweep_every).await;
    }
}

/// The most the final sweep may take to leave nothing `RECEIVED`: past the last leases (the function
/// timeout), the sweeper's back-offs (a minute, doubling), and the backlog the run left. Against a moto
/// holding a 10,000-callback run (three such runs on two cores), finding the stalled records takes most of
/// a sweep's 10 s and a sweep completes about a dozen, so a backlog of hundreds takes many minutes; the
/// sweeps that make no progress end it sooner.
const FINAL_SWEEP_LIMIT: Duration = Duration::from_secs(30 * 60);

impl Settings {
    /// The fault plan of one proxy: its own seed, from the run's seed and its label, so that each proxy
    /// draws the same faults for its n-th call on every run of this seed.
    fn plan(&self, label: &str) -> FaultPlan {
        let seed = label
            .bytes()
            .fold(self.seed ^ 0x9e37_79b9_7f4a_7c15, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        FaultPlan {
            rate: self.fault_rate,
            seed,
            faults: Fault::OUTAGES.to_vec(),
            operations: Vec::new(),
            timeout: Duration::from_secs(1),
            crash_rate: 1.0 / (self.crash_every.max(1) as f64 * CALLS_PER_CALLBACK),
            limit: None,
        }
    }
}

/// How often the soak says how far it is.
const PROGRESS_EVERY: usize = 1000;

/// Send every callback, `concurrency` at a time, each retried as its provider retries.
async fn send_all(
    settings: &Settings,
    callbacks: &[Callback],
    functions: Arc<HashMap<Provider, Function>>,
) -> Vec<Delivery> {
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    let mut tasks = Vec::with_capacity(callbacks.len());
    let started = Instant::now();
    for (index, callback) in callbacks.iter().enumerate() {
        let permit = slots.clone().acquire_owned().await.expect("open");
        if index > 0 && index % PROGRESS_EVERY == 0 {
            eprintln!("chaos: {index} of {} callbacks sent in {} s", callbacks.len(), started.elapsed().as_secs());
        }
        let (slots, functions, body) = (slots.clone(), functions.clone(), callback.body.clone());
        let (scale, timeout) = (settings.time_scale, settings.function_timeout);
        tasks.push(tokio::spawn(async move {
            let provider = body.provider;
            let policy = RetryPolicy::of(provider);
            let mut delivery = Delivery { index, provider, answers: Vec::new(), acknowledged_ms: None };
            let mut permit = Some(permit);
            for attempt in 0..policy.sends() {
                if attempt > 0 {
                    tokio::time::sleep(policy.waits[attempt - 1].mul_f64(scale)).await;
                    permit = Some(slots.clone().acquire_owned().await.expect("open"));
                }
                let event = traffic::apigw_event(provider, body.signed());
                let sent = Instant::now();
                let answer = functions[&provider].invoke(event, timeout).await;
                let (status, code) = status_of(&answer);
                delivery.answers.push((status, code));
                drop(permit.take());
                if (200..300).contains(&status) {
                    delivery.acknowledged_ms = Some(sent.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
            }
            delivery
        }));
    }
    let mut deliveries = Vec::with_capacity(tasks.len());
    for task in tasks {
        deliveries.push(task.await.expect("a sender panicked"));
    }
    deliveries
}

/// The HTTP status API Gateway gives the provider (the function's, or 502 if it crashed or failed), and the
/// error code of a refusal.
fn status_of(answer: &Answer) -> (u16, String) {
    match answer {
        Answer::Response(document) => {
            let document: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
            let status = document.get("statusCode").and_then(|s| s.as_u64()).map_or(502, |s| s as u16);
            let body: serde_json::Value =
                serde_json::from_str(document.get("body").and_then(|b| b.as_str()).unwrap_or_default())
                    .unwrap_or_default();
            let code = if (200..300).contains(&status) { "" } else { body["error"].as_str().unwrap_or("?") };
            (status, code.to_owned())
        }
        Answer::Error(_) => (502, "function_error".to_owned()),
        Answer::Crashed => (502, "crashed".to_owned()),
    }
}

fn sent(callbacks: &[Callback], deliveries: &[Delivery]) -> Sent {
    let mut sent = Sent::default();
    for (callback, delivery) in callbacks.iter().zip(deliveries) {
        sent.carried.extend(callback.body.records.iter().cloned());
        if delivery.acknowledged_ms.is_some() {
            sent.acknowledged.extend(callback.body.records.iter().cloned());
        }
        if delivery.answers.iter().any(|(status, _)| !(200..300).contains(status)) {
            sent.interrupted.extend(callback.body.records.iter().cloned());
        }
        for payment in &callback.body.payments {
            sent.payments.insert(payment.event_id.clone(), payment.clone());
        }
    }
    sent
}

fn figures(
    settings: &Settings,
    callbacks: &[Callback],
    deliveries: &[Delivery],
    fleet: &Fleet,
    findings: &Findings,
    traffic_time: Duration,
) -> Vec<String> {
    let mut faults: HashMap<Fault, usize> = HashMap::new();
    let mut by_operation: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut calls = 0;
    for (_, proxy) in &fleet.proxies {
        for call in proxy.history() {
            calls += 1;
            *faults.entry(call.fault).or_default() += 1;
            if call.fault != Fault::Pass {
                *by_operation.entry(call.operation).or_default() += 1;
            }
        }
    }
    let deaths =
        |pick: fn(&crate::lambda::Deaths) -> usize| -> usize { fleet.functions().map(|f| pick(&f.deaths)).sum() };
    let mut latencies: Vec<f64> = deliveries.iter().filter_map(|d| d.acknowledged_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let percentile =
        |p: f64| latencies.get(((latencies.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0.0);
    let acknowledged = latencies.len();
    let sends: usize = deliveries.iter().map(|d| d.answers.len()).sum();
    let mut refusals: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for (status, code) in deliveries.iter().flat_map(|d| &d.answers).filter(|(status, _)| *status >= 300) {
        *refusals.entry(format!("{status} {code}")).or_default() += 1;
    }
    let outages: usize = Fault::OUTAGES.iter().map(|f| faults.get(f).copied().unwrap_or(0)).sum();
    let repeats = callbacks.iter().filter(|c| c.repeat != traffic::Repeat::First).count();
    vec![
        format!(
            "seed {}: {} callbacks ({repeats} repeats), {sends} sends, {} s, {:.0} callbacks/s",
            settings.seed,
            callbacks.len(),
            traffic_time.as_secs(),
            callbacks.len() as f64 / traffic_time.as_secs_f64()
        ),
        format!(
            "AWS calls {calls}, faults {outages} ({:.1}%): {}",
            100.0 * outages as f64 / calls.max(1) as f64,
            Fault::OUTAGES.iter().map(|f| format!("{} {}", f.as_str(), faults.get(f).copied().unwrap_or(0))).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "faults and crashes by call: {}",
            by_operation.iter().map(|(op, n)| format!("{op} {n}")).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "crashes {} of which the sweeper {} (at a call: before {}, after {}), killed at the deadline {}, exited on their own {}",
            deaths(|d| d.crashes.load(Ordering::Relaxed)),
            fleet.sweeper.deaths.crashes.load(Ordering::Relaxed),
            faults.get(&Fault::CrashBefore).copied().unwrap_or(0),
            faults.get(&Fault::CrashAfter).copied().unwrap_or(0),
            deaths(|d| d.timeouts.load(Ordering::Relaxed)),
            deaths(|d| d.exits.load(Ordering::Relaxed)),
        ),
        format!(
            "acknowledged {acknowledged} of {}: p50 {:.0} ms, p99 {:.0} ms; sends not acknowledged: {}",
            callbacks.len(),
            percentile(0.50),
            percentile(0.99),
            refusals.iter().map(|(answer, n)| format!("{answer} {n}")).collect::<Vec<_>>().join(", ")
        ),
        format!(
            "messages {}: lost {}, extra {} unexplained + {} explained (copies further apart than the 5-minute FIFO deduplication window, after an interrupted send), unknown {}, wrong transaction state {}, left RECEIVED {}",
            findings.messages,
            findings.lost.len(),
            findings.unexplained_extra.len(),
            findings.explained_extra.len(),
            findings.unknown.len(),
            findings.wrong_state.len(),
            findings.received
        ),
    ]
}

/// The history: the run's settings, every AWS call with its fault (per proxy, in order), every send, and
/// every id found on its queue more than once, with when each copy was sent.
fn write_history(
    settings: &Settings,
    callbacks: &[Callback],
    deliveries: &[Delivery],
    proxies: &[(String, Proxy)],
    findings: &Findings,
) -> Result<(), String> {
    let path = settings.out_dir.join("history.jsonl");
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut line = |value: serde_json::Value| writeln!(out, "{value}").map_err(|e| format!("{}: {e}", path.display()));
    line(serde_json::json!({ "settings": format!("{settings:?}") }))?;
    for (label, proxy) in proxies {
        for (n, call) in proxy.history().iter().enumerate() {
            line(
                serde_json::json!({ "proxy": label, "call": n, "operation": call.operation, "fault": call.fault.as_str() }),
            )?;
        }
    }
    for (callback, delivery) in callbacks.iter().zip(deliveries) {
        line(serde_json::json!({
            "callback": delivery.index,
            "provider": delivery.provider.name(),
            "repeat": format!("{:?}", callback.repeat),
            "records": callback.body.records,
            "answers": delivery.answers.iter().map(|(status, code)| format!("{status} {code}").trim().to_owned()).collect::<Vec<_>>(),
        }))?;
    }
    for (id, sent_ms) in &findings.extra_copies {
        line(serde_json::json!({
            "extra": id,
            "explained": findings.explained_extra.contains(id),
            "sent_ms": sent_ms,
        }))?;
    }
    Ok(())
}

/// The table and queues on moto, made by `scripts/local_aws.py` (the local stack's one definition).
struct Stack {
    env: Vec<(String, String)>,
    table: String,
    queues: Vec<(Provider, String)>,
    dynamodb: SocketAddr,
    sqs: SocketAddr,
}

impl Stack {
    fn create(seed: u64) -> Result<Self, String> {
        let endpoint = |service: &str| -> Result<SocketAddr, String> {
            let name = format!("AWS_ENDPOINT_URL_{service}");
            let url = std::env::var(&name)
                .map_err(|_| format!("{name} is not set: run it through `make chaos`, which starts moto"))?;
            url.trim_start_matches("http://").trim_end_matches('/').parse().map_err(|e| format!("{name}={url}: {e}"))
        };
        let (dynamodb, sqs) = (endpoint("DYNAMODB")?, endpoint("SQS")?);
        let stack_name = format!("chaos-{seed}-{}", std::process::id());
        let output = std::process::Command::new(".venv/bin/python")
            .arg("scripts/local_aws.py")
            .arg("create")
            .args(Provider::ALL.iter().map(|p| p.name()))
            .env("STACK_NAME", &stack_name)
            .output()
            .map_err(|e| {
                format!(".venv/bin/python scripts/local_aws.py: {e} (run `make venv`, from the repository)")
            })?;
        if !output.status.success() {
            return Err(format!("scripts/local_aws.py create failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        let mut env: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        let table = env.iter().find(|(k, _)| k == "EVENTS_TABLE").map(|(_, v)| v.clone()).ok_or("no EVENTS_TABLE")?;
        let queues = Provider::ALL
            .into_iter()
            .map(|p| {
                let name = payhooks::config::queue_url_variable(p);
                env.iter().find(|(k, _)| *k == name).map(|(_, v)| (p, v.clone())).ok_or(format!("no {name}"))
            })
            .collect::<Result<_, _>>()?;
        for provider in Provider::ALL {
            env.push((
                format!("{}_WEBHOOK_SECRETS", provider.name().to_ascii_uppercase()),
                traffic::secret_of(provider),
            ));
        }
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL_SSM"] {
            if let Ok(value) = std::env::var(name) {
                env.push((name.to_owned(), value));
            }
        }
        env.push(("AWS_EC2_METADATA_DISABLED".into(), "true".into()));
        env.push(("RUST_LOG".into(), "warn".into()));
        Ok(Self { env, table, queues, dynamodb, sqs })
    }

    /// An SDK configuration straight to moto (the audit's, past the proxies).
    fn sdk(&self) -> aws_config::SdkConfig {
        payhooks::aws::sdk_config(payhooks::config::TlsRoots::Amazon)
    }
}
