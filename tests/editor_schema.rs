//! The JSON Schemas `plugjail schema` prints, checked by the real tools people use them
//! with: the YAML language server (what VS Code's YAML extension and Neovim's yamlls run)
//! driven over its LSP stdio protocol against every shipped profile and a broken one, and
//! ajv (a JSON Schema 2020-12 validator) against real verdicts and `doctor --json` output.
//! The tools are pinned in tests/editor/ and installed by scripts/lib/node-tools.sh.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{TempDir, cli, jail_modes, manifest_dir, plugjail, profile_for, skip, text};

/// The directory the Node tools are installed in, installing them first if npm is here;
/// `None` (after a printed skip, or a failure under PLUGJAIL_TEST_STRICT=1) otherwise.
fn node_tools() -> Option<PathBuf> {
    let installed = |dir: &Path| dir.join("node_modules/.bin/yaml-language-server").exists();
    if let Some(dir) = std::env::var_os("PLUGJAIL_NODE_TOOLS").map(PathBuf::from)
        && installed(&dir)
    {
        return Some(dir);
    }
    let out = Command::new("bash")
        .arg(manifest_dir().join("scripts/lib/node-tools.sh"))
        .stderr(Stdio::inherit())
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(text(&out.stdout).trim());
            if installed(&dir) {
                return Some(dir);
            }
            skip(&format!("no yaml-language-server in {}", dir.display()));
        }
        _ => skip("cannot install the Node tools (scripts/lib/node-tools.sh needs npm)"),
    }
    None
}

/// A yaml-language-server speaking LSP over its stdio.
struct Server {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    settings: Value,
}

impl Server {
    fn start(tools: &Path, settings: Value) -> Server {
        let mut child = Command::new(tools.join("node_modules/.bin/yaml-language-server"))
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start yaml-language-server");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, messages) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                // Headers up to an empty line, then Content-Length bytes of JSON.
                let mut len = None;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length:") {
                        len = v.trim().parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; len.expect("Content-Length header")];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let Ok(v) = serde_json::from_slice(&body) else {
                    return;
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let mut s = Server {
            child,
            stdin,
            messages,
            settings,
        };
        s.send(json!({ "id": 1, "method": "initialize", "params": {
            "processId": null, "rootUri": null,
            "capabilities": { "workspace": { "configuration": true } }
        }}));
        s.wait_for(|m| m["id"] == 1, "the initialize response");
        s.send(json!({ "method": "initialized", "params": {} }));
        s.send(json!({ "method": "workspace/didChangeConfiguration",
                       "params": { "settings": s.settings.clone() } }));
        // The server pulls its settings (workspace/configuration); open documents only once
        // it has them and has gone quiet, so each is validated with the schema.
        s.quiet(Duration::from_millis(500));
        s
    }

    fn send(&mut self, mut msg: Value) {
        msg["jsonrpc"] = json!("2.0");
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next message, answering the server's own requests on the way.
    fn next(&mut self, timeout: Duration) -> Option<Value> {
        loop {
            let m = match self.messages.recv_timeout(timeout) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!("yaml-language-server exited"),
            };
            if m.get("id").is_some() && m.get("method").is_some() {
                let result = if m["method"] == "workspace/configuration" {
                    let items = m["params"]["items"].as_array().cloned().unwrap_or_default();
                    Value::Array(
                        items
                            .iter()
                            .map(|i| self.settings[i["section"].as_str().unwrap_or("")].clone())
                            .collect(),
                    )
                } else {
                    Value::Null
                };
                self.send(json!({ "id": m["id"], "result": result }));
                continue;
            }
            return Some(m);
        }
    }

    fn wait_for(&mut self, pred: impl Fn(&Value) -> bool, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(m) = self.next(Duration::from_secs(1))
                && pred(&m)
            {
                return m;
            }
        }
        panic!("yaml-language-server: no {what} within 30 s");
    }

    /// Reads (and answers) messages until none came for `gap`.
    fn quiet(&mut self, gap: Duration) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(m) = self.next(gap) {
            seen.push(m);
        }
        seen
    }

    /// Opens each file and returns its diagnostics: (0-based line, message) each.
    fn diagnose(&mut self, files: &[PathBuf]) -> Vec<(PathBuf, Vec<(u64, String)>)> {
        let uri = |p: &Path| file_uri(p);
        for f in files {
            let text = std::fs::read_to_string(f).unwrap();
            self.send(
                json!({ "method": "textDocument/didOpen", "params": { "textDocument": {
                    "uri": uri(f), "languageId": "yaml", "version": 1, "text": text
                }}}),
            );
        }
        let mut latest: Vec<Option<Value>> = vec![None; files.len()];
        let deadline = Instant::now() + Duration::from_secs(60);
        // Every file's first publication, then quiet: a later one (revalidation) wins.
        while latest.iter().any(Option::is_none) {
            assert!(
                Instant::now() < deadline,
                "yaml-language-server published no diagnostics for some files"
            );
            let Some(m) = self.next(Duration::from_secs(1)) else {
                continue;
            };
            record(&m, files, &uri, &mut latest);
        }
        for m in self.quiet(Duration::from_millis(500)) {
            record(&m, files, &uri, &mut latest);
        }
        files
            .iter()
            .zip(latest)
            .map(|(f, d)| {
                let list = d.unwrap()["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|d| {
                        (
                            d["range"]["start"]["line"].as_u64().unwrap(),
                            d["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                (f.clone(), list)
            })
            .collect()
    }
}

/// A `file://` URI for `path`, percent-encoded as the server writes it (the checkout may
/// be under a path with a space).
fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

fn record(
    m: &Value,
    files: &[PathBuf],
    uri: &dyn Fn(&Path) -> String,
    latest: &mut [Option<Value>],
) {
    if m["method"] != "textDocument/publishDiagnostics" {
        return;
    }
    if let Some(i) = files.iter().position(|f| m["params"]["uri"] == uri(f)) {
        latest[i] = Some(m.clone());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const BROKEN: &str = "version: 1
filesystem:
  devices: [null, floppy]
limits:
  memory: 512b
seccomp:
  load:
    allow:
      - syscalls: [read, opneat]
landlock:
  reed: [/usr]
";

/// Every shipped profile validates cleanly in the editor, and a broken one gets one short
/// message per mistake, on the lines `plugjail check` names too.
#[test]
fn yaml_language_server_accepts_the_shipped_profiles_and_flags_a_broken_one() {
    let Some(tools) = node_tools() else { return };
    let dir = TempDir::new("editor-schema", 0o755);
    let schema = cli(&["schema"]);
    assert!(schema.status.success());
    let schema_path = dir.write("plugjail.schema.json", text(&schema.stdout), 0o644);
    let broken = dir.write("broken.yaml", BROKEN, 0o644);

    let mut files: Vec<PathBuf> = std::fs::read_dir(manifest_dir().join("profiles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    files.push(broken.clone());

    let settings = json!({ "yaml": {
        "validate": true,
        "schemaStore": { "enable": false },
        "schemas": { file_uri(&schema_path): ["*.yaml"] }
    }});
    let mut server = Server::start(&tools, settings);
    let results = server.diagnose(&files);
    drop(server);

    for (file, diagnostics) in &results {
        if *file != broken {
            assert_eq!(diagnostics, &vec![], "{}", file.display());
        }
    }
    let (_, found) = results.iter().find(|(f, _)| *f == broken).unwrap();
    let expect: [(u64, &str); 4] = [
        (
            2,
            "not a device plugjail provides: null, zero, full, random, urandom, tty",
        ),
        (
            4,
            "a size: whole bytes, or a whole number with K, M, G or T",
        ),
        (8, "not a syscall (x86_64 or aarch64) nor a @group"),
        (10, "Property reed is not allowed"),
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for (line, message) in expect {
        assert!(
            found
                .iter()
                .any(|(l, m)| *l == line && m.starts_with(message)),
            "no `{message}` on line {line}: {found:#?}"
        );
        // Short: not the ~450 valid names.
        assert!(found.iter().all(|(_, m)| m.len() < 200), "{found:#?}");
    }

    // plugjail's reader finds the same mistakes on the same lines (1-based there).
    let out = cli(&["check", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for (line, _) in expect {
        let at = format!("{}:{}:", broken.display(), line + 1);
        assert!(err.contains(&at), "check reports nothing at {at}:\n{err}");
    }
}

/// Validates `docs` (JSON values) against `schema` with ajv; the error text of each.
fn ajv(tools: &Path, dir: &TempDir, schema: &str, docs: &[Value]) -> Vec<Option<String>> {
    let script = dir.write(
        "validate.js",
        "const [ajvDir, schemaFile, docsFile] = process.argv.slice(2);\n\
         const Ajv = require(ajvDir + '/dist/2020').default;\n\
         const fs = require('fs');\n\
         const validate = new Ajv({ strict: false, allErrors: true })\n\
           .compile(JSON.parse(fs.readFileSync(schemaFile, 'utf8')));\n\
         const out = JSON.parse(fs.readFileSync(docsFile, 'utf8'))\n\
           .map(d => validate(d) ? null : ajvErrors(validate.errors));\n\
         function ajvErrors(e) { return JSON.stringify(e); }\n\
         console.log(JSON.stringify(out));\n",
        0o644,
    );
    let schema_out = cli(&["schema", schema]);
    assert!(schema_out.status.success());
    let schema_file = dir.write(
        &format!("{schema}.schema.json"),
        text(&schema_out.stdout),
        0o644,
    );
    let docs_file = dir.write("docs.json", Value::Array(docs.to_vec()).to_string(), 0o644);
    let out = Command::new("node")
        .arg(&script)
        .arg(tools.join("node_modules/ajv"))
        .arg(&schema_file)
        .arg(&docs_file)
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Vec<Option<String>>>(&out.stdout).unwrap()
}

/// Real verdicts (a clean exit, a seccomp violation, a command that does not exist, in
/// every mode this machine has) and real `doctor --json` reports match their schemas; a
/// verdict with an unknown outcome or an unknown field does not.
#[test]
fn report_schemas_match_real_reports() {
    let Some(tools) = node_tools() else { return };
    let dir = TempDir::new("report-schema", 0o777);

    let mut doctor = Vec::new();
    for args in [
        &["doctor", "--json"][..],
        &["doctor", "--json", "--profile", "profiles/strict.yaml"],
    ] {
        let out = cli(args);
        doctor.push(serde_json::from_slice::<Value>(&out.stdout).expect("doctor json"));
    }
    let mut wrong = doctor[1].clone();
    wrong["profile"]["outcome"] = json!("maybe");
    doctor.push(wrong);
    let checked = ajv(&tools, &dir, "--doctor", &doctor);
    assert_eq!(checked[..2], [None, None], "{checked:#?}");
    assert!(
        checked[2].as_deref().is_some_and(|e| e.contains("outcome")),
        "{checked:#?}"
    );

    let modes = jail_modes();
    if modes.is_empty() {
        return;
    }
    let mut verdicts = Vec::new();
    for &mode in &modes {
        for (profile, program) in [
            ("default", "/usr/bin/true"),
            ("strict", "/usr/bin/ls"),
            ("default", "/nonexistent/program"),
        ] {
            let report = dir.path().join(format!("{}-{profile}.json", mode.name()));
            // The rootless user must be able to create the report.
            let _ = std::fs::remove_file(&report);
            let out = mode
                .command(plugjail())
                .arg("exec")
                .arg("--profile")
                .arg(profile_for(mode, profile))
                .arg("--report")
                .arg(&report)
                .args(["--", program])
                .output()
                .expect("plugjail runs");
            let v: Value = serde_json::from_slice(&std::fs::read(&report).unwrap_or_default())
                .unwrap_or_else(|e| {
                    panic!(
                        "{} {program}: no verdict ({e}): {}",
                        mode.name(),
                        text(&out.stderr)
                    )
                });
            verdicts.push(v);
        }
    }
    let outcomes: Vec<&str> = verdicts
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    for o in ["exited", "seccomp_violation", "not_found"] {
        assert!(outcomes.contains(&o), "{outcomes:?}");
    }
    let n = verdicts.len();
    let mut bogus = verdicts[0].clone();
    bogus["outcome"] = json!("bogus");
    let mut extra = verdicts[0].clone();
    extra["surprise"] = json!(1);
    verdicts.extend([bogus, extra]);
    let checked = ajv(&tools, &dir, "--verdict", &verdicts);
    assert!(checked[..n].iter().all(Option::is_none), "{checked:#?}");
    assert!(
        checked[n].is_some() && checked[n + 1].is_some(),
        "{checked:#?}"
    );
}
