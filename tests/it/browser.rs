//! Headless Chromium driven over the DevTools protocol (`--remote-debugging-pipe`: JSON
//! messages ended by NUL, commands on fd 3, replies and events on fd 4), to look at pages as a
//! reader's browser runs them.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long one protocol command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    commands: ChildStdin,
    replies: BufReader<ChildStdout>,
    next_id: u64,
    /// The session of the one page.
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with one blank page; `None` (with a message) without Chromium.
    pub async fn start() -> Option<Browser> {
        if !std::path::Path::new(CHROMIUM).exists() {
            eprintln!("skipping: needs {CHROMIUM} (apt-get install chromium)");
            return None;
        }
        let profile = tempfile::tempdir().unwrap();
        let flags = "--headless --no-sandbox --disable-gpu --disable-background-networking \
                     --disable-component-update --disable-sync --no-first-run \
                     --remote-debugging-pipe";
        // The shell moves our pipes to the fds the protocol uses.
        let script = format!(
            "exec 3<&0 4>&1 0</dev/null 1>/dev/null; exec {CHROMIUM} {flags} --user-data-dir=\"$1\" about:blank"
        );
        let mut child = tokio::process::Command::new("sh")
            .args(["-c", &script, "sh"])
            .arg(profile.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let commands = child.stdin.take().unwrap();
        let replies = BufReader::new(child.stdout.take().unwrap());
        let mut browser = Browser {
            child,
            commands,
            replies,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target =
            browser.call(None, "Target.createTarget", json!({ "url": "about:blank" })).await;
        let params = json!({ "targetId": target["targetId"], "flatten": true });
        let attached = browser.call(None, "Target.attachToTarget", params).await;
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        Some(browser)
    }

    /// Sends a command (to the page's session, or the browser's) and returns its result.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = session.into();
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).await.unwrap();
        loop {
            let mut reply = Vec::new();
            let read = tokio::time::timeout(COMMAND_LIMIT, self.replies.read_until(0, &mut reply));
            assert!(read.await.expect("chromium did not answer").unwrap() > 0, "chromium exited");
            reply.pop();
            let reply: Value = serde_json::from_slice(&reply).unwrap();
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    pub async fn navigate(&mut self, url: &str) {
        let session = self.session.clone();
        self.call(Some(&session), "Page.navigate", json!({ "url": url })).await;
    }

    /// The value of a JavaScript expression in the page.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let session = self.session.clone();
        let params = json!({ "expression": expression, "returnByValue": true });
        let result = self.call(Some(&session), "Runtime.evaluate", params).await;
        result["result"]["value"].clone()
    }

    /// Polls the expression until it is `true`; false if it never was within `limit`.
    pub async fn wait_for(&mut self, limit: Duration, expression: &str) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if self.eval(expression).await == json!(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Makes the page's `prefers-color-scheme` `light` or `dark`.
    #[allow(dead_code)] // for tests only; benches/big_log includes this file too
    pub async fn emulate_color_scheme(&mut self, scheme: &str) {
        let session = self.session.clone();
        let features = json!([{ "name": "prefers-color-scheme", "value": scheme }]);
        let params = json!({ "features": features });
        self.call(Some(&session), "Emulation.setEmulatedMedia", params).await;
    }

    /// Saves a PNG of the page to `$TETHER_SCREENSHOTS/NAME.png` when that variable is set, for
    /// a person to look at the pages the tests drive.
    pub async fn screenshot(&mut self, name: &str) {
        let Some(dir) = std::env::var_os("TETHER_SCREENSHOTS") else { return };
        let session = self.session.clone();
        let shot = self.call(Some(&session), "Page.captureScreenshot", json!({})).await;
        let png = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            shot["data"].as_str().expect("a screenshot"),
        )
        .unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }

    /// Asks Chromium to close (it then ends its renderer and helper processes too) and waits for
    /// it to exit, killing it if it does not within `COMMAND_LIMIT`.
    #[allow(dead_code)] // for benches/big_log; no test needs it
    pub async fn close(mut self) {
        // Chromium may exit before it replies, so the reply is not awaited.
        let mut bytes = serde_json::to_vec(&json!({ "id": 0, "method": "Browser.close" })).unwrap();
        bytes.push(0);
        let _ = self.commands.write_all(&bytes).await;
        if tokio::time::timeout(COMMAND_LIMIT, self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// The page's DOM as HTML.
    pub async fn dom(&mut self) -> String {
        self.eval("document.documentElement.outerHTML").await.as_str().unwrap_or_default().into()
    }
}
