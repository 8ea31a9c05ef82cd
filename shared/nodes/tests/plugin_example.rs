//! The example plugin `examples/plugins/text-stats` as a real local executor: starts
//! `python3 text_stats.py --port 0`, reads the port it prints, runs events through the runner.
#![allow(clippy::unwrap_used)]

use cm_nodes::plugin::PluginExecutor;
use cm_nodes::secrets::LocalSecrets;
use cm_nodes::{NodeEvent, NodeOutput, NodeRunner};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The plugin's server process; killed when dropped (also when a test panics).
struct Plugin {
    child: Child,
    url: String,
}

impl Plugin {
    fn start() -> Plugin {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/plugins/text-stats/text_stats.py");
        let mut child = Command::new("python3")
            .arg("-B")
            .arg(&script)
            .args(["--port", "0", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting python3 {}: {e}", script.display()));
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        // Blocks until the server is listening (it prints the line after binding).
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the plugin: {line:?}"))
            .to_owned();
        Plugin { child, url }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn runner(plugin: &Plugin) -> NodeRunner {
    let mut services =
        cm_nodes::test_util::services(LocalSecrets::new().insert("GREETING", "hello secret world"));
    services.plugins.insert(
        "example.text_stats",
        PluginExecutor::new(&plugin.url)
            .unwrap()
            .with_timeout_seconds(10),
    );
    NodeRunner::builtin(services)
}

fn event(config: Value) -> NodeEvent {
    serde_json::from_value(json!({
        "node": {"id": "stats", "type": "example.text_stats", "typeVersion": 1},
        "config": config,
        "input": {"comment": "ignored by this plugin"},
        "context": {"executionId": "run-1", "workflowId": "feedback-stats", "stateName": "stats"}
    }))
    .unwrap()
}

#[tokio::test]
async fn the_text_stats_example_runs_as_a_local_executor() {
    let plugin = Plugin::start();
    assert!(
        plugin.url.starts_with("http://127.0.0.1:"),
        "{}",
        plugin.url
    );
    let runner = runner(&plugin);

    let out = runner
        .run(event(
            json!({"text": "The cat saw the other cat. The end!", "top": 2}),
        ))
        .await
        .unwrap();
    assert_eq!(
        out,
        NodeOutput::out(json!({
            "words": 8,
            "characters": 35,
            "distinctWords": 5,
            "topWords": [{"word": "the", "count": 3}, {"word": "cat", "count": 2}]
        }))
    );

    // Blank text takes the `empty` port; `top` defaults to 3.
    let out = runner.run(event(json!({"text": "  \n "}))).await.unwrap();
    assert_eq!(out.port, "empty");
    assert_eq!(out.output["words"], 0);

    // Secrets are resolved before the plugin sees the config.
    let out = runner
        .run(event(json!({"text": "{{ secrets.GREETING }}", "top": 1})))
        .await
        .unwrap();
    assert_eq!(out.output["words"], 3);

    // The plugin's own error name reaches Retry/Catch unchanged.
    let e = runner.run(event(json!({"text": 42}))).await.unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
    assert_eq!(e.cause(), "config.text must be a string, got int");
    let e = runner
        .run(event(json!({"text": "x", "top": "many"})))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "ConcertMaster.InvalidConfig");
    assert!(e.cause().contains("config.top"), "{e}");

    // A wrong executor URL is an HTTP error, not a node error of the plugin's.
    let mut services = cm_nodes::test_util::services(LocalSecrets::new());
    let wrong = plugin.url.replace("/run", "/wrong");
    services
        .plugins
        .insert("example.text_stats", PluginExecutor::new(&wrong).unwrap());
    let e = NodeRunner::builtin(services)
        .run(event(json!({"text": "x"})))
        .await
        .unwrap_err();
    assert!(
        matches!(e, cm_nodes::NodeError::Http4xx { status: 404, .. }),
        "{e:?}"
    );
}
