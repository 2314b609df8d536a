//! `payhooks-send --load N`: the local load test. N signed callbacks across the five providers, a share of
//! them re-sent (some while the first delivery is still in flight), from a number of threads at once, to the
//! running local stack. Prints latency percentiles and throughput, and writes every event id the unique
//! callbacks carry, one per line, for `scripts/local_aws.py audit` to compare with what reached the queues.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use payhooks::config::{provider_overrides, VerifyConfig};
use payhooks::signing::SignOptions;
use payhooks::signing::{typical, typical_id, SignedRequest};
use payhooks::verify::SecretSet;
use payhooks::Provider;

struct Job {
    provider: Provider,
    signed: Arc<SignedRequest>,
}

pub fn load(total: usize, concurrency: usize, duplicate_pct: usize, expected_file: &str) -> Result<bool, String> {
    let base = std::env::var("PAYHOOKS_URL").map_err(|_| "set PAYHOOKS_URL: run it through `make loadtest`")?;
    let run_id = Utc::now().timestamp_millis();
    let unique = total * (100 - duplicate_pct) / 100;
    let mut jobs: Vec<Job> = Vec::with_capacity(total);
    let mut expected: Vec<String> = Vec::new();
    for i in 0..unique {
        let provider = Provider::ALL[i % Provider::ALL.len()];
        let env = provider_overrides(provider, |name| std::env::var(name).ok());
        let secrets = env("WEBHOOK_SECRETS").ok_or("set <PROVIDER>_WEBHOOK_SECRETS")?;
        let secret = SecretSet::parse(&secrets, "WEBHOOK_SECRETS").map_err(|e| e.to_string())?.current().clone();
        let path = format!("tests/fixtures/{provider}/{}.json", typical(provider));
        let fixture = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e} (run from the repository)"))?;
        let body = fixture.replace(typical_id(provider), &format!("L{run_id}-{i}"));
        let options = SignOptions::from_lookup(provider, &env);
        let signed =
            payhooks::signing::sign(provider, &body, &secret, &options, Utc::now()).map_err(|e| e.to_string())?;
        // The events payhooks will record for it, from its own code: what the audit expects on the queues.
        let secrets = SecretSet::parse(&secrets, "WEBHOOK_SECRETS").map_err(|e| e.to_string())?.into();
        let path = signed.path(provider);
        let post = payhooks::providers::Incoming {
            method: &lambda_http::http::Method::POST,
            path: &path,
            headers: &signed.headers,
            body: signed.body.as_bytes(),
            source_ip: None,
        };
        let callback = payhooks::providers::authenticate_and_normalise(
            provider,
            &VerifyConfig::default(),
            &secrets,
            &post,
            Utc::now(),
        )
        .map_err(|e| e.to_string())?;
        expected.extend(callback.events.iter().map(|e| e.id.clone()));
        jobs.push(Job { provider, signed: Arc::new(signed) });
    }
    // Duplicates: spread through the run, each right after (so often concurrent with) its original.
    for d in 0..total - unique {
        let original = (d * 7919) % unique;
        let job = Job { provider: jobs[original].provider, signed: jobs[original].signed.clone() };
        let at = (original + 1 + d % 3).min(jobs.len());
        jobs.insert(at, job);
    }
    std::fs::write(expected_file, expected.join("\n") + "\n").map_err(|e| format!("{expected_file}: {e}"))?;

    let queue = Arc::new(Mutex::new(jobs.into_iter().rev().collect::<Vec<_>>()));
    let results = Arc::new(Mutex::new(Vec::<(u16, Duration)>::with_capacity(total)));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (queue, results, agent, base) = (queue.clone(), results.clone(), agent.clone(), base.clone());
            std::thread::spawn(move || loop {
                let Some(job) = queue.lock().unwrap().pop() else { break };
                let path = job.signed.path(job.provider);
                let url = format!("{}{}", base.trim_end_matches('/'), path.trim_start_matches("/webhooks"));
                let mut request = agent.post(&url).header("content-type", "application/json");
                for (name, value) in &job.signed.headers {
                    request = request.header(name, value);
                }
                let sent = Instant::now();
                let status = request.send(job.signed.body.as_str()).map(|r| r.status().as_u16()).unwrap_or(0);
                results.lock().unwrap().push((status, sent.elapsed()));
            })
        })
        .collect();
    for worker in workers {
        worker.join().map_err(|_| "a worker panicked")?;
    }
    let elapsed = started.elapsed();
    let results = results.lock().unwrap();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    let acked = results.iter().filter(|(s, _)| (200..300).contains(s)).count();
    println!(
        "sent {} callbacks ({unique} unique, {} duplicates) at concurrency {concurrency} in {:.1} s: {:.0}/s",
        results.len(),
        total - unique,
        elapsed.as_secs_f64(),
        results.len() as f64 / elapsed.as_secs_f64()
    );
    println!("latency ms: p50 {:.1}  p95 {:.1}  p99 {:.1}", pct(0.50), pct(0.95), pct(0.99));
    println!("acknowledged {acked} of {} (others: {:?})", results.len(), {
        let mut other: Vec<u16> = results.iter().map(|(s, _)| *s).filter(|s| !(200..300).contains(s)).collect();
        other.sort();
        other.dedup();
        other
    });
    Ok(acked == results.len())
}
