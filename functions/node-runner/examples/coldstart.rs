//! Cold-start harness for the node-runner binary: serves a fake Lambda Runtime API on
//! 127.0.0.1, starts the binary N times (a fresh process and API each time, one invocation
//! queued) and times process start → first answer posted. Baselines in the same run:
//! `/bin/true` (start → exit) and a minimal Runtime API client (this harness re-run with
//! `--minimal-client`: std-only connect, poll, post).
//!
//! `cargo run --profile release-lambda -p node-runner --example coldstart -- --bin PATH --runs 20`
//! (`scripts/measure-node-runner` builds, strips and zips first, then runs this).

#[path = "../tests/support/fake_runtime.rs"]
#[allow(dead_code)]
mod fake_runtime;

use fake_runtime::FakeRuntime;
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(30);

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--minimal-client") {
        return minimal_client();
    }
    let mut bin: Option<PathBuf> = None;
    let mut runs = 20usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bin" => bin = it.next().map(PathBuf::from),
            "--runs" => runs = it.next().ok_or("--runs needs a number")?.parse()?,
            other => {
                return Err(format!("unknown argument `{other}` (--bin PATH, --runs N)").into());
            }
        }
    }
    let bin = match bin {
        Some(b) => b,
        // target/<profile>/examples/coldstart → target/<profile>/node-runner
        None => std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .ok_or("cannot locate the node-runner binary; pass --bin")?
            .join("node-runner"),
    };
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(measure(bin, runs))
}

async fn measure(bin: PathBuf, runs: usize) -> Res<()> {
    let me = std::env::current_exe()?;
    println!(
        "cold start: process start -> first answer posted to the fake Runtime API, {runs} runs each"
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "", "median", "p90", "min", "max"
    );

    let mut t = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let status = Command::new("/bin/true").status().await?;
        if !status.success() {
            return Err("/bin/true failed".into());
        }
        t.push(start.elapsed());
    }
    report("/bin/true (start -> exit)", &mut t);

    let mut t = Vec::new();
    for i in 0..runs {
        let (elapsed, _) = one_start(&me, &["--minimal-client"], i).await?;
        t.push(elapsed);
    }
    report("minimal Runtime API client", &mut t);

    let mut t = Vec::new();
    let mut peak_kb = Vec::new();
    for i in 0..runs {
        let (elapsed, kb) = one_start(&bin, &[], i).await?;
        t.push(elapsed);
        peak_kb.extend(kb);
    }
    report("node-runner (transform.filter)", &mut t);
    if !peak_kb.is_empty() {
        peak_kb.sort_unstable();
        println!(
            "node-runner peak RSS after the first invocation: median {} KiB (VmHWM)",
            peak_kb[peak_kb.len() / 2]
        );
    }
    Ok(())
}

/// Starts `program` against a fresh fake API with one invocation queued; returns the time to
/// its answer and its peak RSS (KiB) at that moment.
async fn one_start(program: &PathBuf, args: &[&str], i: usize) -> Res<(Duration, Option<u64>)> {
    let mut api = FakeRuntime::start().await?;
    let id = format!("cold-{i}");
    api.invoke(
        &id,
        json!({
            "node": {"id": "adults", "type": "transform.filter", "typeVersion": 1},
            "config": {"items": [{"age": 40}, {"age": 12}], "condition": "age >= 18"},
            "context": {"executionId": "run-cold", "attempt": 0}
        }),
    );
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(api.lambda_env())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let outcome = api
        .outcome(WAIT)
        .await
        .ok_or_else(|| format!("{} posted no answer within {WAIT:?}", program.display()))?;
    let elapsed = outcome.at.duration_since(start);
    if !outcome.ok || outcome.request_id != id {
        return Err(format!("{} answered {:?}", program.display(), outcome).into());
    }
    let peak = child.id().and_then(peak_rss_kb);
    child.start_kill()?;
    let _ = child.wait().await;
    Ok((elapsed, peak))
}

fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn report(label: &str, t: &mut [Duration]) {
    t.sort_unstable();
    let n = t.len();
    let median = if n % 2 == 1 {
        t[n / 2]
    } else {
        (t[n / 2 - 1] + t[n / 2]) / 2
    };
    let p90 = t[(n * 9).div_ceil(10).max(1) - 1];
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        label,
        ms(median),
        ms(p90),
        ms(t[0]),
        ms(t[n - 1])
    );
}

/// The baseline: the least a Runtime API client does (connect, poll, echo the event back as
/// the answer), with the standard library only.
fn minimal_client() -> Res<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    let mut stream = std::net::TcpStream::connect(&api)?;
    stream.set_nodelay(true)?;
    write!(
        stream,
        "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let (mut id, mut length) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "lambda-runtime-aws-request-id" => id = v.trim().to_owned(),
                "content-length" => length = v.trim().parse()?,
                _ => {}
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let mut post = format!(
        "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    post.extend_from_slice(&body);
    stream.write_all(&post)?;
    let mut status = String::new();
    reader.read_line(&mut status)?;
    Ok(())
}
