//! `mcc-loadgen`: keeps N keep-alive connections busy with signed requests
//! to one path of `mcc serve` for a while, then prints requests per second
//! and latency percentiles as one JSON line.
//!
//! Every request is signed anew (fresh nonce, timestamp), as a real client
//! must: the daemon refuses a nonce seen before.
//!
//! Usage: mcc-loadgen [--connections N] [--seconds S] [--path PATH]
//! with MCC_ENDPOINT_URL, MCC_ACCESS_TOKEN and MCC_SECRET_KEY set.

use std::time::{Duration, Instant};

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        eprintln!("mcc-loadgen: set {name} (e.g. source the daemon's credentials file)");
        std::process::exit(2)
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let connections: usize = arg(&args, "--connections", "32")
        .parse()
        .expect("--connections N");
    let seconds: u64 = arg(&args, "--seconds", "10").parse().expect("--seconds S");
    let path = arg(&args, "--path", "/api/v1/clusters");
    let url = env("MCC_ENDPOINT_URL");
    let token = env("MCC_ACCESS_TOKEN");
    let secret = env("MCC_SECRET_KEY");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()
        .expect("an HTTP client");
    let target = format!("{}{path}", url.trim_end_matches('/'));
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let end = start + warmup + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, target, path, token, secret) = (
            client.clone(),
            target.clone(),
            path.clone(),
            token.clone(),
            secret.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(1 << 16);
            let (mut errors, mut bytes) = (0u64, 0u64);
            while Instant::now() < end {
                let t = Instant::now();
                let mut req = client.get(&target);
                for (k, v) in mcc_api::sign::sign("GET", &path, b"", &token, &secret) {
                    req = req.header(k, v);
                }
                match req.send().await {
                    Ok(res) if res.status().is_success() => match res.bytes().await {
                        Ok(b) => {
                            if t >= start + warmup {
                                latencies.push(t.elapsed().as_micros() as u32);
                                bytes += b.len() as u64;
                            }
                        }
                        Err(_) => errors += 1,
                    },
                    _ => errors += 1,
                }
            }
            (latencies, errors, bytes)
        }));
    }
    let mut all = Vec::new();
    let (mut errors, mut bytes) = (0, 0);
    for t in tasks {
        let (l, e, b) = t.await.expect("a load task");
        all.extend(l);
        errors += e;
        bytes += b;
    }
    all.sort_unstable();
    let pct = |p: f64| {
        if all.is_empty() {
            0.0
        } else {
            all[((all.len() as f64 * p) as usize).min(all.len() - 1)] as f64 / 1000.0
        }
    };
    let count = all.len();
    println!(
        "{{\"path\":\"{path}\",\"connections\":{connections},\"seconds\":{seconds},\"requests\":{count},\
         \"requests_per_second\":{:.0},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\
         \"errors\":{errors},\"bytes_per_response\":{}}}",
        count as f64 / seconds as f64,
        pct(0.50),
        pct(0.99),
        pct(1.0),
        if count > 0 { bytes / count as u64 } else { 0 },
    );
}
