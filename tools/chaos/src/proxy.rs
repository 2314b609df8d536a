//! A fault-injecting HTTP/1.1 proxy in front of one AWS endpoint (a moto server). Each call is forwarded,
//! or answered with a fault drawn from a seeded generator: a 500, a throttle, a timeout, or the nasty one,
//! the call applied upstream and its answer lost (the connection dropped after forwarding). Every call and
//! its fault is kept in a history, so that a run can be audited and replayed.
//!
//! A proxy can also crash its caller: given a crash channel, it asks for the calling process to be killed
//! before a call is forwarded or after it was applied, and holds the call unanswered meanwhile; so a crash
//! falls between any two AWS calls of one delivery.
//!
//! One request per connection: every answer says `Connection: close`, which the SDK's client honours.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedSender;

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Forwarded, and its answer passed back.
    Pass,
    /// Not forwarded: `500 InternalServerError`.
    ServerError,
    /// Not forwarded: `400 ThrottlingException`.
    Throttle,
    /// Not forwarded: no answer until [`FaultPlan::timeout`], then the connection is dropped.
    Timeout,
    /// Forwarded and applied, then the connection is dropped before the answer.
    AppliedButLost,
    /// The caller's process is killed before the call is forwarded.
    CrashBefore,
    /// The call is applied, then the caller's process is killed before it hears the answer.
    CrashAfter,
}

impl Fault {
    /// The faults the soak draws among, each equally likely (crashes are drawn apart, at their own rate).
    pub const OUTAGES: [Fault; 4] = [Fault::ServerError, Fault::Throttle, Fault::Timeout, Fault::AppliedButLost];

    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::ServerError => "server-error",
            Fault::Throttle => "throttle",
            Fault::Timeout => "timeout",
            Fault::AppliedButLost => "applied-but-lost",
            Fault::CrashBefore => "crash-before",
            Fault::CrashAfter => "crash-after",
        }
    }
}

/// Which faults a proxy injects, how often, and from which seed.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// The share of calls that get a fault (0.0 to 1.0).
    pub rate: f64,
    pub seed: u64,
    /// The faults to choose among, equally likely.
    pub faults: Vec<Fault>,
    /// Only calls whose operation is one of these get a fault (all, if empty).
    pub operations: Vec<String>,
    /// How long a [`Fault::Timeout`] holds the connection.
    pub timeout: Duration,
    /// The share of calls at which the caller's process is killed (needs a crash channel).
    pub crash_rate: f64,
    /// At most this many faults, then every call passes (all, if `None`).
    pub limit: Option<usize>,
}

impl FaultPlan {
    /// No fault at all.
    pub fn none() -> Self {
        Self {
            rate: 0.0,
            seed: 0,
            faults: Vec::new(),
            operations: Vec::new(),
            timeout: Duration::from_secs(5),
            crash_rate: 0.0,
            limit: None,
        }
    }

    /// Every call of `operation` gets `fault`.
    pub fn always(fault: Fault, operation: &str) -> Self {
        Self { rate: 1.0, faults: vec![fault], operations: vec![operation.to_owned()], ..Self::none() }
    }

    /// The first call of `operation` gets `fault`; every later call passes.
    pub fn once(fault: Fault, operation: &str) -> Self {
        Self { limit: Some(1), ..Self::always(fault, operation) }
    }
}

/// One call through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The operation, from `X-Amz-Target` (`PutItem`, `SendMessage`, ...), or `?` if the request names none.
    pub operation: String,
    pub fault: Fault,
}

/// A running proxy.
pub struct Proxy {
    pub addr: SocketAddr,
    history: Arc<Mutex<Vec<Call>>>,
    calm: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listen on a free loopback port and forward to `upstream` under `plan`.
    pub async fn start(upstream: SocketAddr, plan: FaultPlan) -> std::io::Result<Self> {
        Self::with_crashes(upstream, plan, None).await
    }

    /// As [`Proxy::start`]; a drawn crash is asked for on `crashes` (whoever owns the calling process kills it).
    pub async fn with_crashes(
        upstream: SocketAddr,
        plan: FaultPlan,
        crashes: Option<UnboundedSender<()>>,
    ) -> std::io::Result<Self> {
        let plan = FaultPlan { crash_rate: if crashes.is_some() { plan.crash_rate } else { 0.0 }, ..plan };
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let history = Arc::new(Mutex::new(Vec::new()));
        let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(plan.seed)));
        let (plan, calls) = (Arc::new(plan), history.clone());
        let calm = Arc::new(AtomicBool::new(false));
        let quiet = calm.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (plan, rng, calls, crashes) = (plan.clone(), rng.clone(), calls.clone(), crashes.clone());
                let calm = quiet.load(Ordering::Relaxed);
                tokio::spawn(async move {
                    let _ = serve(client, upstream, &plan, &rng, &calls, crashes.as_ref(), calm).await;
                });
            }
        });
        Ok(Self { addr, history, calm, task })
    }

    /// The endpoint URL to give a client instead of the upstream's.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// From now on, forward every call untouched.
    pub fn calm(&self) {
        self.calm.store(true, Ordering::Relaxed);
    }

    /// Every call so far, in the order they arrived.
    pub fn history(&self) -> Vec<Call> {
        self.history.lock().expect("history lock").clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long a crashing call is held unanswered: far longer than a kill takes.
const CRASH_HOLD: Duration = Duration::from_secs(30);

/// The most a request or answer head may be.
const MAX_HEAD: usize = 64 * 1024;

/// One request: read it, choose its fault, act.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    plan: &FaultPlan,
    rng: &Mutex<StdRng>,
    calls: &Mutex<Vec<Call>>,
    crashes: Option<&UnboundedSender<()>>,
    calm: bool,
) -> std::io::Result<()> {
    let request = read_message(&mut client).await?;
    let operation = header(&request.head, "x-amz-target")
        .and_then(|target| target.rsplit('.').next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned());
    let fault = {
        let mut calls = calls.lock().expect("history lock");
        let spent = plan.limit.is_some_and(|limit| calls.iter().filter(|c| c.fault != Fault::Pass).count() >= limit);
        let fault = if calm || spent { Fault::Pass } else { choose(plan, &operation, rng) };
        calls.push(Call { operation, fault });
        fault
    };
    match fault {
        Fault::Pass | Fault::AppliedButLost | Fault::CrashAfter => {
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(&request.bytes).await?;
            let answer = read_message(&mut server).await?;
            match fault {
                Fault::Pass => client.write_all(&with_connection_close(&answer)).await?,
                Fault::CrashAfter => crash(crashes).await,
                // AppliedButLost: the upstream applied it; the client's connection is dropped unanswered.
                _ => {}
            }
        }
        Fault::CrashBefore => crash(crashes).await,
        Fault::ServerError => {
            client.write_all(&error_answer(500, "InternalServerError", "injected by the chaos proxy")).await?;
        }
        Fault::Throttle => {
            client.write_all(&error_answer(400, "ThrottlingException", "Rate exceeded")).await?;
        }
        Fault::Timeout => tokio::time::sleep(plan.timeout).await,
    }
    client.shutdown().await
}

/// Ask for the caller to be killed, and hold its call unanswered until it is.
async fn crash(crashes: Option<&UnboundedSender<()>>) {
    if let Some(crashes) = crashes {
        let _ = crashes.send(());
    }
    tokio::time::sleep(CRASH_HOLD).await;
}

fn choose(plan: &FaultPlan, operation: &str, rng: &Mutex<StdRng>) -> Fault {
    let eligible = plan.operations.is_empty() || plan.operations.iter().any(|o| o == operation);
    if !eligible {
        return Fault::Pass;
    }
    let mut rng = rng.lock().expect("rng lock");
    if plan.crash_rate > 0.0 && rng.random_bool(plan.crash_rate.clamp(0.0, 1.0)) {
        return if rng.random_bool(0.5) { Fault::CrashBefore } else { Fault::CrashAfter };
    }
    if plan.faults.is_empty() {
        return Fault::Pass;
    }
    if rng.random_bool(plan.rate.clamp(0.0, 1.0)) {
        plan.faults[rng.random_range(0..plan.faults.len())]
    } else {
        Fault::Pass
    }
}

/// An HTTP/1.1 message as read: its head (up to the blank line) and all its bytes.
pub(crate) struct Message {
    pub(crate) head: Vec<(String, String)>,
    pub(crate) bytes: Vec<u8>,
}

impl Message {
    /// The request or status line.
    pub(crate) fn start_line(&self) -> &str {
        let end = self.bytes.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
        std::str::from_utf8(&self.bytes[..end]).unwrap_or_default()
    }

    /// What follows the head.
    pub(crate) fn body(&self) -> &[u8] {
        let end = self.bytes.windows(4).position(|w| w == b"\r\n\r\n").map_or(self.bytes.len(), |at| at + 4);
        &self.bytes[end..]
    }
}

/// Read one HTTP/1.1 message whose body has a `Content-Length` (what the SDK sends and moto answers), or
/// runs to the end of the connection.
pub(crate) async fn read_message(stream: &mut TcpStream) -> std::io::Result<Message> {
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut bytes = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if bytes.len() > MAX_HEAD {
            return Err(invalid("head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(invalid("connection closed before the head ended"));
        }
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = &bytes[..head_end];
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let parsed = if head.starts_with(b"HTTP/") {
        let mut response = httparse::Response::new(&mut headers);
        response.parse(head).map_err(|e| invalid(&e.to_string()))?;
        to_pairs(response.headers)
    } else {
        let mut request = httparse::Request::new(&mut headers);
        request.parse(head).map_err(|e| invalid(&e.to_string()))?;
        to_pairs(request.headers)
    };
    match header(&parsed, "content-length").map(|v| v.trim().parse::<usize>()) {
        Some(Ok(length)) => {
            while bytes.len() < head_end + length {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(invalid("connection closed before the body ended"));
                }
                bytes.extend_from_slice(&chunk[..n]);
            }
        }
        Some(Err(_)) => return Err(invalid("bad content-length")),
        None if bytes.starts_with(b"HTTP/") => {
            stream.read_to_end(&mut bytes).await?;
        }
        None => {}
    }
    Ok(Message { head: parsed, bytes })
}

fn to_pairs(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers.iter().map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned())).collect()
}

pub(crate) fn header<'h>(head: &'h [(String, String)], name: &str) -> Option<&'h str> {
    head.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The upstream's answer with `Connection: close` (this proxy serves one request per connection).
fn with_connection_close(answer: &Message) -> Vec<u8> {
    let text = answer.bytes.as_slice();
    let head_end = text.windows(4).position(|w| w == b"\r\n\r\n").map_or(text.len(), |at| at + 2);
    let head = String::from_utf8_lossy(&text[..head_end]);
    let mut out: Vec<u8> = head
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:") && !line.is_empty())
        .flat_map(|line| [line.as_bytes(), b"\r\n"].concat())
        .collect();
    out.extend_from_slice(b"Connection: close\r\n");
    out.extend_from_slice(&text[head_end..]);
    out
}

/// An AWS JSON-protocol error answer.
fn error_answer(status: u16, code: &str, message: &str) -> Vec<u8> {
    let body = format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}");
    let reason = if status == 500 { "Internal Server Error" } else { "Bad Request" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in upstream that counts the requests it receives and answers each `200 {}`.
    async fn upstream() -> (SocketAddr, Arc<Mutex<usize>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(0));
        let counter = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    if read_message(&mut stream).await.is_ok() {
                        *counter.lock().unwrap() += 1;
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await;
                    }
                });
            }
        });
        (addr, seen)
    }

    async fn call(proxy: &Proxy, target: &str) -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(proxy.addr).await?;
        let body = "{\"TableName\":\"t\"}";
        let request = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: {target}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok(answer)
    }

    #[tokio::test]
    async fn each_fault_does_what_it_says_and_is_recorded() {
        let (addr, seen) = upstream().await;
        let passing = Proxy::start(addr, FaultPlan::none()).await.unwrap();
        let answer = String::from_utf8(call(&passing, "DynamoDB_20120810.GetItem").await.unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("Connection: close") && answer.ends_with("{}"));
        assert_eq!(*seen.lock().unwrap(), 1);
        assert_eq!(passing.history(), [Call { operation: "GetItem".into(), fault: Fault::Pass }]);

        let lost = Proxy::start(addr, FaultPlan::always(Fault::AppliedButLost, "PutItem")).await.unwrap();
        assert!(call(&lost, "DynamoDB_20120810.PutItem").await.unwrap().is_empty(), "no answer");
        assert_eq!(*seen.lock().unwrap(), 2, "yet the upstream got it");
        assert!(String::from_utf8(call(&lost, "DynamoDB_20120810.GetItem").await.unwrap()).unwrap().contains("200"));

        let throttled = Proxy::start(addr, FaultPlan::always(Fault::Throttle, "SendMessage")).await.unwrap();
        let answer = String::from_utf8(call(&throttled, "AmazonSQS.SendMessage").await.unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("ThrottlingException"));
        let failing = Proxy::start(addr, FaultPlan::always(Fault::ServerError, "PutItem")).await.unwrap();
        assert!(String::from_utf8(call(&failing, "X.PutItem").await.unwrap()).unwrap().starts_with("HTTP/1.1 500"));
        assert_eq!(*seen.lock().unwrap(), 3, "neither a throttle nor a 500 reaches the upstream");

        let plan = FaultPlan { timeout: Duration::from_millis(50), ..FaultPlan::always(Fault::Timeout, "Query") };
        let slow = Proxy::start(addr, plan).await.unwrap();
        let started = std::time::Instant::now();
        assert!(call(&slow, "X.Query").await.unwrap().is_empty());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_crash_is_asked_for_before_or_after_the_call_is_applied_and_the_call_is_held() {
        let (addr, seen) = upstream().await;
        let mut drawn = Vec::new();
        for seed in 0..8 {
            let (crashes, mut asked) = tokio::sync::mpsc::unbounded_channel();
            let plan = FaultPlan { crash_rate: 1.0, seed, ..FaultPlan::none() };
            let proxy = Proxy::with_crashes(addr, plan, Some(crashes)).await.unwrap();
            let before = *seen.lock().unwrap();
            let pending = tokio::spawn({
                let addr = proxy.addr;
                async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    let request = "POST / HTTP/1.1\r\nX-Amz-Target: AmazonSQS.SendMessage\r\nContent-Length: 0\r\n\r\n";
                    stream.write_all(request.as_bytes()).await.unwrap();
                    let mut answer = Vec::new();
                    let _ = stream.read_to_end(&mut answer).await;
                    answer
                }
            });
            asked.recv().await.expect("a crash asked for");
            let [Call { operation, fault }] = &proxy.history()[..] else { panic!("one call: {:?}", proxy.history()) };
            assert_eq!(operation, "SendMessage");
            let applied = *seen.lock().unwrap() - before;
            assert_eq!(applied, usize::from(*fault == Fault::CrashAfter), "{fault:?}");
            assert!(!pending.is_finished(), "{fault:?}: the caller hears nothing before it is killed");
            pending.abort();
            drawn.push(*fault);
        }
        assert!(drawn.contains(&Fault::CrashBefore) && drawn.contains(&Fault::CrashAfter), "{drawn:?}");
    }

    /// The same seed draws the same faults in the same order: a failing run can be replayed exactly.
    #[test]
    fn a_seed_draws_the_same_faults() {
        let plan = FaultPlan {
            rate: 0.3,
            seed: 7,
            faults: vec![Fault::ServerError, Fault::Throttle, Fault::AppliedButLost],
            ..FaultPlan::none()
        };
        let draw = |plan: &FaultPlan| {
            let rng = Mutex::new(StdRng::seed_from_u64(plan.seed));
            (0..200).map(|_| choose(plan, "PutItem", &rng)).collect::<Vec<_>>()
        };
        let first = draw(&plan);
        assert_eq!(first, draw(&plan));
        let faulted = first.iter().filter(|f| **f != Fault::Pass).count();
        assert!((30..=90).contains(&faulted), "about 30% of 200: {faulted}");
        assert_ne!(first, draw(&FaultPlan { seed: 8, ..plan }));
    }
}
