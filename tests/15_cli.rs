//! `linnet pub`, `linnet sub` and `linnet rr` as a user runs them: real processes against
//! the `linnet broker` binary over real sockets, and side by side with mosquitto_sub /
//! mosquitto_pub (same messages, same `-F` strings, byte-identical output).
//!
//! Every process wait has a deadline; every spawned process is killed (by its handle) when
//! its guard drops. mosquitto-clients missing: the comparison tests print a skip line, or
//! fail when LINNET_REQUIRE_MOSQUITTO=1 (scripts/test sets it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const LINNET: &str = env!("CARGO_BIN_EXE_linnet");
/// The longest any process or condition may take.
const DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------
// Processes

/// A running process whose stdout and stderr are collected by two threads; killed on drop.
struct Proc {
    name: String,
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
}

impl Finished {
    fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Asserts exit code 0 (showing stderr otherwise) and passes the output on.
    fn expect_success(self) -> Finished {
        assert_eq!(self.code(), 0, "{}", self.stderr);
        self
    }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    })
}

impl Proc {
    fn spawn(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Proc {
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // mosquitto_sub prints local time; linnet prints UTC.
            .env("TZ", "UTC")
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        if let Some(data) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(data).unwrap();
            // Dropping the pipe closes it: end of input.
        }
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Proc {
            name: format!("{program} {}", args.join(" ")),
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn linnet(args: &[&str]) -> Proc {
        Proc::spawn(LINNET, args, None)
    }

    fn stdout(&self) -> Vec<u8> {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn describe(&self) -> String {
        format!(
            "{}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.name,
            String::from_utf8_lossy(&self.stdout()).escape_debug(),
            self.stderr()
        )
    }

    /// Waits until `what` holds of the process, or fails the test.
    fn wait_for(&mut self, what: &str, cond: impl Fn(&Proc) -> bool) {
        let start = Instant::now();
        while !cond(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                // One last look: the output may have arrived with the exit.
                std::thread::sleep(Duration::from_millis(50));
                if cond(self) {
                    return;
                }
                panic!("{what}: exited ({status}) first\n{}", self.describe());
            }
            if start.elapsed() > DEADLINE {
                panic!("{what}: not within {DEADLINE:?}\n{}", self.describe());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_stderr(&mut self, needle: &str) {
        self.wait_for(&format!("stderr to contain {needle:?}"), |p| {
            p.stderr().contains(needle)
        });
    }

    fn wait_stdout(&mut self) {
        self.wait_for("output", |p| !p.stdout().is_empty());
    }

    /// Waits for the exit (killing the process past the deadline) and returns its output.
    fn finish(mut self) -> Finished {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                panic!("did not exit within {DEADLINE:?}\n{}", self.describe());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a command to its end.
fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Finished {
    Proc::spawn(program, args, stdin).finish()
}

fn linnet(args: &[&str]) -> Finished {
    run(LINNET, args, None)
}

/// Runs and expects exit code 0.
fn ok(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Finished {
    let out = run(program, args, stdin);
    assert_eq!(
        out.code(),
        0,
        "{program} {args:?} failed\nstdout: {}\nstderr: {}",
        out.stdout_str(),
        out.stderr
    );
    out
}

// ---------------------------------------------------------------------------------------
// The broker

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `linnet broker` on two free ports (MQTT over TCP and over WebSocket).
struct Broker {
    _proc: Proc,
    tcp: String,
    ws: String,
}

impl Broker {
    fn start() -> Broker {
        Broker::start_with(&[])
    }

    /// A broker with these extra flags.
    fn start_with(extra: &[&str]) -> Broker {
        for _ in 0..5 {
            if let Some(broker) = Broker::start_on(free_port(), free_port(), extra) {
                return broker;
            }
        }
        panic!("the broker did not start");
    }

    /// A broker on these ports; `None` if it could not listen on them.
    fn start_on(tcp: u16, ws: u16, extra: &[&str]) -> Option<Broker> {
        let tcp_addr = format!("127.0.0.1:{tcp}");
        let ws_addr = format!("127.0.0.1:{ws}");
        let mut args = vec!["broker", "--tcp", &tcp_addr, "--ws", &ws_addr];
        args.extend_from_slice(extra);
        let mut proc = Proc::linnet(&args);
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if let Ok(Some(_)) = proc.child.try_wait() {
                return None; // a port was taken meanwhile
            }
            if TcpStream::connect(("127.0.0.1", tcp)).is_ok()
                && TcpStream::connect(("127.0.0.1", ws)).is_ok()
            {
                return Some(Broker {
                    _proc: proc,
                    tcp: tcp.to_string(),
                    ws: ws.to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `linnet pub -p PORT <args>`, expected to succeed.
    fn publish(&self, args: &[&str]) {
        let mut all = vec!["pub", "-p", &self.tcp];
        all.extend_from_slice(args);
        ok(LINNET, &all, None);
    }

    /// `linnet sub -p PORT -d <args>`, returned once its SUBACK arrived.
    fn subscriber(&self, args: &[&str]) -> Proc {
        let mut all = vec!["sub", "-p", &self.tcp, "-d"];
        all.extend_from_slice(args);
        let mut proc = Proc::linnet(&all);
        proc.wait_stderr("received SUBACK");
        proc
    }
}

fn mosquitto_available() -> bool {
    let found = ["mosquitto_sub", "mosquitto_pub"]
        .iter()
        .all(|p| Command::new(p).arg("--help").output().is_ok());
    if !found {
        if std::env::var("LINNET_REQUIRE_MOSQUITTO").as_deref() == Ok("1") {
            panic!("mosquitto_sub / mosquitto_pub not found and LINNET_REQUIRE_MOSQUITTO=1");
        }
        eprintln!("SKIP: mosquitto-clients not installed (apt install mosquitto-clients)");
    }
    found
}

// ---------------------------------------------------------------------------------------
// linnet broker

/// The broker routes over real sockets with one worker thread (tokio's single-threaded
/// scheduler) and with several (the work-stealing one); an out-of-range count is refused,
/// naming the flag.
#[test]
fn broker_runs_with_one_or_several_threads_and_checks_the_count() {
    for threads in ["1", "3"] {
        let broker = Broker::start_with(&["--threads", threads]);
        let sub = broker.subscriber(&["-t", "threads/#", "-C", "1", "-F", "%t %p"]);
        broker.publish(&["-t", "threads/x", "-m", threads]);
        let out = sub.finish().expect_success();
        assert_eq!(out.stdout_str(), format!("threads/x {threads}\n"));
    }
    let refused = linnet(&["broker", "--threads", "2000"]);
    assert_eq!(refused.code(), 2);
    assert!(refused.stderr.contains("--threads"), "{}", refused.stderr);
}

// ---------------------------------------------------------------------------------------
// linnet pub | sub on their own

#[test]
fn pub_lines_piped_into_sub_count_and_format() {
    let broker = Broker::start();
    let sub = broker.subscriber(&["-t", "pipe/#", "-C", "3", "-F", "%t %p"]);
    ok(
        LINNET,
        &[
            "pub",
            "-p",
            &broker.tcp,
            "-t",
            "pipe/lines",
            "-l",
            "-q",
            "1",
        ],
        Some(b"one\ntwo words\nthree\n"),
    );
    let out = sub.finish().expect_success();
    assert_eq!(
        out.stdout_str(),
        "pipe/lines one\npipe/lines two words\npipe/lines three\n"
    );
}

#[test]
fn pub_sources_repeat_and_blank_lines() {
    let broker = Broker::start();
    let sub = broker.subscriber(&["-t", "src/#", "-C", "8", "-F", "%t [%p] %l %q %r"]);
    broker.publish(&[
        "-t",
        "src/m",
        "-m",
        "text",
        "--repeat",
        "2",
        "--repeat-delay",
        "0.05",
    ]);
    broker.publish(&["-t", "src/n", "-n", "-q", "2"]);
    let file = std::env::temp_dir().join(format!("linnet-cli-{}.bin", std::process::id()));
    std::fs::write(&file, b"from a file").unwrap();
    broker.publish(&["-t", "src/f", "-f", file.to_str().unwrap(), "-q", "1"]);
    std::fs::remove_file(&file).ok();
    ok(
        LINNET,
        &["pub", "-p", &broker.tcp, "-t", "src/s", "-s"],
        Some(b"all\nof stdin"),
    );
    ok(
        LINNET,
        &["pub", "-p", &broker.tcp, "-t", "src/l", "-l"],
        Some(b"a\n\nb"),
    );
    let out = sub.finish();
    assert_eq!(
        out.stdout_str(),
        "src/m [text] 4 0 0\nsrc/m [text] 4 0 0\nsrc/n [] 0 0 0\nsrc/f [from a file] 11 0 0\n\
         src/s [all\nof stdin] 12 0 0\nsrc/l [a] 1 0 0\nsrc/l [] 0 0 0\nsrc/l [b] 1 0 0\n"
    );
}

#[test]
fn sub_timeout_and_count() {
    let broker = Broker::start();
    let start = Instant::now();
    let out = linnet(&["sub", "-p", &broker.tcp, "-t", "quiet/#", "-W", "1"]);
    assert_eq!(out.code(), 5, "{}", out.stderr);
    assert!(out.stderr.contains("timed out"), "{}", out.stderr);
    assert!(out.stdout.is_empty());
    assert!(start.elapsed() >= Duration::from_secs(1));

    // -C ends before -W.
    let sub = broker.subscriber(&["-t", "cnt/#", "-C", "2", "-W", "20", "-v"]);
    broker.publish(&["-t", "cnt/a", "-m", "1"]);
    broker.publish(&["-t", "cnt/b", "-m", "2"]);
    let out = sub.finish().expect_success();
    assert_eq!(out.stdout_str(), "cnt/a 1\ncnt/b 2\n");
}

#[test]
fn sub_retained_flags() {
    let broker = Broker::start();
    broker.publish(&["-t", "ret/a", "-m", "old-a", "-r"]);
    broker.publish(&["-t", "ret/b", "-m", "old-b", "-r", "-q", "1"]);

    // -R skips the retained ones; the live message is printed.
    let sub = broker.subscriber(&["-t", "ret/#", "-R", "-C", "1", "-F", "%t %p %r"]);
    broker.publish(&["-t", "ret/c", "-m", "live"]);
    let out = sub.finish();
    assert_eq!(out.stdout_str(), "ret/c live 0\n");

    // --retained-only prints the retained ones and ends at the first live message.
    let mut sub = broker.subscriber(&["-t", "ret/#", "--retained-only", "-F", "%p %r"]);
    sub.wait_for("two retained messages", |p| {
        p.stdout().iter().filter(|&&b| b == b'\n').count() >= 2
    });
    broker.publish(&["-t", "ret/c", "-m", "live"]);
    let out = sub.finish().expect_success();
    let mut lines: Vec<_> = out.stdout_str().lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(lines, ["old-a 1", "old-b 1"]);

    // --remove-retained clears them: a later subscriber sees nothing retained.
    let mut sub = broker.subscriber(&["-t", "ret/#", "--remove-retained", "-C", "2", "-F", "%t"]);
    sub.wait_for("two retained messages", |p| {
        p.stdout().iter().filter(|&&b| b == b'\n').count() >= 2
    });
    sub.finish().expect_success();
    let out = linnet(&["sub", "-p", &broker.tcp, "-t", "ret/#", "-W", "1", "-v"]);
    assert_eq!(out.code(), 5);
    assert_eq!(out.stdout_str(), "", "retained messages left");
}

#[test]
fn sub_filter_out_no_eol_and_verbose() {
    let broker = Broker::start();
    let sub = broker.subscriber(&[
        "-t",
        "fo/#",
        "-T",
        "fo/skip/#",
        "-T",
        "fo/+/x",
        "-C",
        "3",
        "-N",
        "-v",
    ]);
    for (topic, payload) in [
        ("fo/skip/1", "no"),
        ("fo/a", "1"),
        ("fo/b/x", "no"),
        ("fo/b", "2"),
        ("fo/skip", "no"),
        ("fo/empty", ""),
    ] {
        if payload.is_empty() {
            broker.publish(&["-t", topic, "-n"]);
        } else {
            broker.publish(&["-t", topic, "-m", payload]);
        }
    }
    let out = sub.finish();
    // -N: no newline; -v with -N prints nothing for an empty payload (like mosquitto_sub).
    assert_eq!(out.stdout_str(), "fo/a 1fo/b 2");
}

#[test]
fn persistent_session_exit_after_subscribe_and_unsubscribe() {
    let broker = Broker::start();
    linnet(&[
        "sub",
        "-p",
        &broker.tcp,
        "-c",
        "-i",
        "keeper",
        "-q",
        "1",
        "-t",
        "ps/a",
        "-t",
        "ps/b",
        "-E",
    ])
    .expect_success();
    linnet(&[
        "sub",
        "-p",
        &broker.tcp,
        "-c",
        "-i",
        "keeper",
        "-U",
        "ps/a",
        "-E",
    ])
    .expect_success();
    broker.publish(&["-t", "ps/a", "-m", "unsubscribed", "-q", "1"]);
    broker.publish(&["-t", "ps/b", "-m", "queued", "-q", "1"]);
    let out = linnet(&[
        "sub",
        "-p",
        &broker.tcp,
        "-c",
        "-i",
        "keeper",
        "-q",
        "1",
        "-t",
        "ps/none",
        "-C",
        "1",
        "-W",
        "10",
        "-F",
        "%t %p %q",
    ])
    .expect_success();
    assert_eq!(out.stdout_str(), "ps/b queued 1\n");
}

#[test]
fn v5_properties_from_pub_reach_sub_format() {
    let broker = Broker::start();
    let sub = broker.subscriber(&[
        "-V",
        "5",
        "-t",
        "props/#",
        "-C",
        "2",
        "-D",
        "subscribe",
        "subscription-identifier",
        "42",
        "-F",
        "%t|%P|%C|%R|%D|%E|%F|%S|%A|%q",
    ]);
    broker.publish(&[
        "-V",
        "5",
        "-t",
        "props/one",
        "-m",
        "x",
        "-q",
        "1",
        "-D",
        "publish",
        "user-property",
        "k1",
        "v1",
        "-D",
        "publish",
        "user-property",
        "k2",
        "v 2",
        "-D",
        "publish",
        "content-type",
        "text/plain",
        "-D",
        "publish",
        "response-topic",
        "re/ply",
        "-D",
        "publish",
        "correlation-data",
        "corr",
        "-D",
        "publish",
        "message-expiry-interval",
        "3600",
        "-D",
        "publish",
        "payload-format-indicator",
        "1",
        "-D",
        "connect",
        "session-expiry-interval",
        "0",
        "-D",
        "disconnect",
        "reason-string",
        "bye",
    ]);
    broker.publish(&["-V", "5", "-t", "props/two", "-m", "y"]);
    let out = sub.finish().expect_success();
    let text = out.stdout_str();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    // The broker forwards the remaining expiry: 3600 or, across a second boundary, 3599.
    let first = lines[0].replace("|3599|", "|3600|");
    assert_eq!(
        first,
        "props/one|k1:v1 k2:v 2|text/plain|re/ply|corr|3600|1|42||0"
    );
    assert_eq!(lines[1], "props/two|||||||42||0");
}

#[test]
fn protocol_versions() {
    let broker = Broker::start();
    for version in ["31", "311", "5", "mqttv311"] {
        let topic = format!("ver/{version}");
        let sub = broker.subscriber(&[
            "-V", version, "-t", &topic, "-C", "1", "-q", "2", "-F", "%t %p %q",
        ]);
        broker.publish(&["-V", version, "-t", &topic, "-m", "hi", "-q", "2"]);
        let out = sub.finish();
        assert_eq!(out.code(), 0, "-V {version}: {}", out.stderr);
        assert_eq!(out.stdout_str(), format!("ver/{version} hi 2\n"));
    }
    let out = linnet(&["pub", "-p", &broker.tcp, "-V", "4", "-t", "x", "-m", "y"]);
    assert_eq!(out.code(), 2);
    assert!(out.stderr.contains("31, 311 or 5"), "{}", out.stderr);
    // -D needs MQTT 5.0.
    let out = linnet(&[
        "pub",
        "-p",
        &broker.tcp,
        "-t",
        "x",
        "-m",
        "y",
        "-D",
        "publish",
        "content-type",
        "a",
    ]);
    assert_eq!(out.code(), 2);
    assert!(out.stderr.contains("-V 5"), "{}", out.stderr);
}

#[test]
fn websocket_and_urls() {
    let broker = Broker::start();
    let mut sub = Proc::linnet(&[
        "sub", "--ws", "-p", &broker.ws, "-d", "-t", "ws/#", "-C", "3", "-F", "%t %p",
    ]);
    sub.wait_stderr("received SUBACK");
    ok(
        LINNET,
        &[
            "pub", "--ws", "-p", &broker.ws, "-t", "ws/a", "-m", "over ws",
        ],
        None,
    );
    let url = format!("ws://127.0.0.1:{}/mqtt", broker.ws);
    ok(
        LINNET,
        &["pub", "-L", &url, "-t", "ws/b", "-m", "ws url", "-V", "5"],
        None,
    );
    let url = format!("mqtt://someone:secret@127.0.0.1:{}/ws/c", broker.tcp);
    ok(LINNET, &["pub", "-L", &url, "-m", "mqtt url"], None);
    let out = sub.finish().expect_success();
    assert_eq!(
        out.stdout_str(),
        "ws/a over ws\nws/b ws url\nws/c mqtt url\n"
    );

    // A topic from the URL also works for sub.
    let url = format!("mqtt://127.0.0.1:{}/url/topic", broker.tcp);
    let mut sub = Proc::linnet(&["sub", "-L", &url, "-d", "-C", "1", "-v"]);
    sub.wait_stderr("received SUBACK");
    broker.publish(&["-t", "url/topic", "-m", "found"]);
    assert_eq!(sub.finish().stdout_str(), "url/topic found\n");

    let out = linnet(&["pub", "-L", "http://x/y", "-m", "z"]);
    assert_eq!(out.code(), 2);
    assert!(out.stderr.contains("http://x/y"), "{}", out.stderr);
}

/// A server that answers every CONNECT with `connack`.
fn refusing_server(connack: &'static [u8]) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            stream.set_read_timeout(Some(DEADLINE)).ok();
            let mut buf = [0u8; 512];
            let _ = stream.read(&mut buf); // the CONNECT
            let _ = stream.write_all(connack);
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    (port, handle)
}

#[test]
fn connection_refused_unreachable_and_lost() {
    // MQTT 3.1.1: return code 5.
    let (port, server) = refusing_server(&[0x20, 0x02, 0x00, 0x05]);
    let out = linnet(&["pub", "-p", &port.to_string(), "-t", "x", "-m", "y"]);
    server.join().unwrap();
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("connection refused: not authorized (0x05)"),
        "{}",
        out.stderr
    );
    // MQTT 5.0: reason code 0x87.
    let (port, server) = refusing_server(&[0x20, 0x03, 0x00, 0x87, 0x00]);
    let out = linnet(&["sub", "-p", &port.to_string(), "-t", "x", "-V", "5"]);
    server.join().unwrap();
    assert_eq!(out.code(), 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("connection refused: not authorized (0x87)"),
        "{}",
        out.stderr
    );
    // --quiet: the code without the words.
    let (port, server) = refusing_server(&[0x20, 0x03, 0x00, 0x86, 0x00]);
    let out = linnet(&[
        "rr",
        "-p",
        &port.to_string(),
        "-t",
        "x",
        "-e",
        "y",
        "-m",
        "z",
        "--quiet",
    ]);
    server.join().unwrap();
    assert_eq!(out.code(), 4);
    assert_eq!(out.stderr, "");

    // Nobody listening.
    let port = free_port().to_string();
    let out = linnet(&["pub", "-p", &port, "-t", "x", "-m", "y"]);
    assert_eq!(out.code(), 3, "{}", out.stderr);
    assert!(out.stderr.contains("cannot connect"), "{}", out.stderr);

    // The server goes away while sub waits.
    let (port, server) = scripted_server(|stream| {
        read_packet(stream); // CONNECT
        stream.write_all(&[0x20, 0x02, 0x00, 0x00]).unwrap();
        let (_, body) = read_packet(stream); // SUBSCRIBE
        stream
            .write_all(&[0x90, 0x03, body[0], body[1], 0x00])
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // Returning drops the stream: the connection closes.
    });
    let out = linnet(&["sub", "-p", &port, "-t", "x", "-W", "20"]);
    server.join().unwrap();
    assert_eq!(out.code(), 6, "{}", out.stderr);
    assert!(out.stderr.contains("connection lost"), "{}", out.stderr);
}

/// Reads one MQTT packet: (first byte, body).
fn read_packet(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).unwrap();
    let first = byte[0];
    let (mut len, mut shift) = (0usize, 0);
    loop {
        stream.read_exact(&mut byte).unwrap();
        len |= usize::from(byte[0] & 0x7f) << shift;
        shift += 7;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    (first, body)
}

/// A one-connection server that plays `script`.
fn scripted_server(
    script: impl FnOnce(&mut TcpStream) + Send + 'static,
) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        script(&mut stream);
    });
    (port.to_string(), handle)
}

/// Waits for the client to close (or for the deadline).
fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 256];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

#[test]
fn server_rejections_and_disconnect() {
    // PUBACK 0x87.
    let (port, server) = scripted_server(|stream| {
        read_packet(stream); // CONNECT
        stream.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).unwrap();
        let (first, body) = read_packet(stream); // PUBLISH "x", QoS 1
        assert_eq!(first & 0xf0, 0x30);
        let id = &body[3..5]; // after the topic "x" (2 + 1 bytes)
        stream.write_all(&[0x40, 0x03, id[0], id[1], 0x87]).unwrap();
        // A failed publish still ends with DISCONNECT 0x00, so no will is published (as
        // mosquitto_pub does).
        let (first, body) = read_packet(stream);
        assert_eq!(first, 0xe0, "DISCONNECT after the rejected publish");
        assert!(body.is_empty() || body[0] == 0x00, "{body:?}");
        drain(stream);
    });
    let out = linnet(&[
        "pub", "-p", &port, "-V", "5", "-t", "x", "-m", "y", "-q", "1",
    ]);
    server.join().unwrap();
    assert_eq!(out.code(), 7, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("rejected by the server: not authorized (0x87)"),
        "{}",
        out.stderr
    );

    // SUBACK 0x87 for the only filter.
    let (port, server) = scripted_server(|stream| {
        read_packet(stream);
        stream.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).unwrap();
        let (_, body) = read_packet(stream); // SUBSCRIBE
        stream
            .write_all(&[0x90, 0x04, body[0], body[1], 0x00, 0x87])
            .unwrap();
        drain(stream);
    });
    let out = linnet(&["sub", "-p", &port, "-V", "5", "-t", "secret/#"]);
    server.join().unwrap();
    assert_eq!(out.code(), 7, "{}", out.stderr);
    assert!(
        out.stderr.contains("not authorized (0x87)"),
        "{}",
        out.stderr
    );

    // No SUBACK ever: -W still ends the command.
    let (port, server) = scripted_server(|stream| {
        read_packet(stream);
        stream.write_all(&[0x20, 0x02, 0x00, 0x00]).unwrap();
        read_packet(stream); // SUBSCRIBE, never answered
        drain(stream);
    });
    let out = linnet(&["sub", "-p", &port, "-t", "x", "-W", "1"]);
    server.join().unwrap();
    assert_eq!(out.code(), 5, "{}", out.stderr);
    assert!(out.stderr.contains("timed out after 1 s"), "{}", out.stderr);

    // DISCONNECT 0x8B while sub waits.
    let (port, server) = scripted_server(|stream| {
        read_packet(stream);
        stream.write_all(&[0x20, 0x03, 0x00, 0x00, 0x00]).unwrap();
        let (_, body) = read_packet(stream);
        stream
            .write_all(&[0x90, 0x04, body[0], body[1], 0x00, 0x00])
            .unwrap();
        stream.write_all(&[0xe0, 0x01, 0x8b]).unwrap();
        drain(stream);
    });
    let out = linnet(&["sub", "-p", &port, "-V", "5", "-t", "x", "-W", "20"]);
    server.join().unwrap();
    assert_eq!(out.code(), 6, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("disconnected by the server: server shutting down (0x8b)"),
        "{}",
        out.stderr
    );
}

#[test]
fn will_is_published_when_the_client_dies() {
    let broker = Broker::start();
    let mut dying = broker.subscriber(&[
        "-V",
        "5",
        "-t",
        "w/ignored",
        "--will-topic",
        "will/t",
        "--will-payload",
        "gone",
        "--will-qos",
        "1",
        "--will-retain",
        "-D",
        "will",
        "user-property",
        "why",
        "killed",
    ]);
    dying.child.kill().unwrap();
    let out = linnet(&[
        "sub",
        "-p",
        &broker.tcp,
        "-V",
        "5",
        "-t",
        "will/t",
        "-C",
        "1",
        "-W",
        "20",
        "-F",
        "%t %p %r %P",
    ])
    .expect_success();
    assert_eq!(out.stdout_str(), "will/t gone 1 why:killed\n");
    // Without --will-topic, the other will flags are refused.
    let out = linnet(&["pub", "-t", "a", "-m", "b", "--will-payload", "x"]);
    assert_eq!(out.code(), 2);
    assert!(out.stderr.contains("--will-topic"), "{}", out.stderr);
}

#[test]
fn usage_errors_and_help() {
    let cases: &[(&[&str], &str)] = &[
        (&["pub", "--bogus"], "--bogus"),
        (&["sub", "-t", "x", "-Z"], "-Z"),
        (&["pub", "-t", "x"], "<--message <MESSAGE>|"),
        (&["pub", "-m", "x", "-p", "1"], "no topic"),
        (&["pub", "-t", "a/#", "-m", "x", "-p", "1"], "invalid topic"),
        (
            &["pub", "-t", "a", "-m", "x", "-q", "3"],
            "QoS must be 0, 1 or 2",
        ),
        (&["pub", "-t", "a", "-m", "x", "-n"], "cannot be used with"),
        (&["sub", "-p", "1"], "no topic"),
        (&["sub", "-t", "a/#/b", "-p", "1"], "invalid -t filter"),
        (
            &["sub", "-t", "a", "-C", "0", "-p", "1"],
            "-C must be at least 1",
        ),
        (
            &[
                "pub",
                "-V",
                "5",
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "publish",
                "bogus-prop",
                "1",
            ],
            "bogus-prop",
        ),
        (
            &[
                "pub",
                "-V",
                "5",
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "publish",
                "message-expiry-interval",
                "soon",
            ],
            "soon",
        ),
        (
            &[
                "pub",
                "-V",
                "5",
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "publish",
                "user-property",
                "k",
            ],
            "user-property",
        ),
        (
            &[
                "sub",
                "-V",
                "5",
                "-t",
                "a",
                "-D",
                "publish",
                "content-type",
                "x",
            ],
            "unknown or unsupported command",
        ),
        (&["rr", "-t", "a", "-m", "x"], "--response-topic"),
        (
            &["pub", "-t", "a", "-m", "x", "-x", "10"],
            "-x needs MQTT 5.0",
        ),
        (
            &["sub", "-t", "a", "-F", "%t %z"],
            "invalid format specifier 'z'",
        ),
        (&["sub", "-t", "a", "-F", "%t\\"], "incomplete escape"),
        (
            &["rr", "-t", "a", "-e", "b", "-m", "x", "-F", "%5"],
            "incomplete format specifier",
        ),
        (&["sub", "-t", "a", "-c"], "needs a client id"),
        (
            &["pub", "-t", "a", "-m", "x", "-P", "secret"],
            "-P needs a user name",
        ),
    ];
    for (args, want) in cases {
        let out = linnet(args);
        assert_eq!(out.code(), 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(want),
            "{args:?}: expected {want:?} in\n{}",
            out.stderr
        );
    }
    for command in ["pub", "sub", "rr"] {
        let out = linnet(&[command, "--help"]);
        assert_eq!(out.code(), 0);
        let text = out.stdout_str();
        for want in [
            "Examples:",
            "Exit codes:",
            "-h, --host",
            "connection refused by the server",
        ] {
            assert!(
                text.contains(want),
                "{command} --help lacks {want:?}:\n{text}"
            );
        }
    }
    let out = linnet(&["sub", "--help"]);
    assert!(out.stdout_str().contains("%j/%J"));
}

#[test]
fn rr_request_response() {
    let broker = Broker::start();
    // A responder: prints the response topic and correlation data of each request.
    let mut responder =
        broker.subscriber(&["-V", "5", "-t", "svc/echo", "-C", "1", "-F", "%R %D %p"]);
    let mut rr = Proc::linnet(&[
        "rr",
        "-p",
        &broker.tcp,
        "-t",
        "svc/echo",
        "-e",
        "replies/me",
        "-m",
        "ping",
        "-W",
        "20",
        "-F",
        "%t %p %D",
    ]);
    responder.wait_stdout();
    let out = responder.finish();
    let line = out.stdout_str();
    let mut parts = line.trim_end().splitn(3, ' ');
    let (reply_to, correlation, payload) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    assert_eq!(
        (reply_to.as_str(), payload.as_str()),
        ("replies/me", "ping"),
        "{line}"
    );
    assert!(correlation.starts_with("linnet-rr-"), "{line}");
    // A reply with other correlation data is not the answer.
    broker.publish(&[
        "-V",
        "5",
        "-t",
        &reply_to,
        "-m",
        "not yours",
        "-D",
        "publish",
        "correlation-data",
        "other",
    ]);
    broker.publish(&[
        "-V",
        "5",
        "-t",
        &reply_to,
        "-m",
        "pong",
        "-D",
        "publish",
        "correlation-data",
        &correlation,
    ]);
    rr.wait_stdout();
    let out = rr.finish().expect_success();
    assert_eq!(out.stdout_str(), format!("replies/me pong {correlation}\n"));

    let out = linnet(&[
        "rr",
        "-p",
        &broker.tcp,
        "-t",
        "svc/none",
        "-e",
        "replies/none",
        "-m",
        "x",
        "-W",
        "1",
    ]);
    assert_eq!(out.code(), 5, "{}", out.stderr);
    assert!(out.stderr.contains("no response"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// Side by side with mosquitto_sub

/// Replaces the value of every `"tst"` (the time of printing) with `T`.
fn without_timestamps(out: &[u8]) -> Vec<u8> {
    let mut result = Vec::with_capacity(out.len());
    let key = b"\"tst\":";
    let mut i = 0;
    while i < out.len() {
        if out[i..].starts_with(key) {
            result.extend_from_slice(key);
            i += key.len();
            while i < out.len() && out[i] != b'"' {
                result.push(out[i]);
                i += 1;
            }
            // Skip the quoted value.
            i += 1;
            while i < out.len() && out[i] != b'"' {
                i += 1;
            }
            i += 1;
            result.extend_from_slice(b"\"T\"");
        } else {
            result.push(out[i]);
            i += 1;
        }
    }
    result
}

/// Runs mosquitto_sub and linnet sub with the same flags for each case, publishes the same
/// messages (with `publish`), and asserts byte-identical output. Returns mosquitto_sub's
/// output per case.
fn compare_with_mosquitto(
    broker: &Broker,
    version: &str,
    cases: &[Vec<&str>],
    count: usize,
    publish: impl FnOnce(),
) -> Vec<Vec<u8>> {
    let mut pairs = Vec::new();
    let count = count.to_string();
    for (n, case) in cases.iter().enumerate() {
        let mut args = vec![
            "-p",
            &broker.tcp,
            "-V",
            version,
            "-q",
            "2",
            "-t",
            "cmp/#",
            "-C",
            &count,
        ];
        args.extend(case.iter().copied());
        let mosquitto = Proc::spawn("mosquitto_sub", &args, None);
        let mut linnet_args = vec!["sub"];
        linnet_args.extend(args.iter().copied());
        let linnet = Proc::spawn(LINNET, &linnet_args, None);
        pairs.push((n, mosquitto, linnet));
    }
    // Each subscriber prints the retained "cmp/0" first: then it is subscribed.
    for (_, m, l) in &mut pairs {
        m.wait_stdout();
        l.wait_stdout();
    }
    publish();
    let mut outputs = Vec::new();
    for (n, m, l) in pairs {
        let m = m.finish();
        let l = l.finish();
        let case = &cases[n];
        assert_eq!(m.code(), 0, "mosquitto_sub {case:?}: {}", m.stderr);
        assert_eq!(l.code(), 0, "linnet sub {case:?}: {}", l.stderr);
        let (mo, lo) = (without_timestamps(&m.stdout), without_timestamps(&l.stdout));
        assert!(
            mo == lo,
            "-V {version} {case:?}: outputs differ\nmosquitto_sub: {}\nlinnet sub:    {}",
            mo.escape_ascii(),
            lo.escape_ascii()
        );
        // The same complaints (%J with a payload that is not JSON).
        let complaints = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.contains("not valid JSON"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(complaints(&m.stderr), complaints(&l.stderr), "{case:?}");
        outputs.push(m.stdout);
    }
    outputs
}

const BINARY: &[u8] = b"\x00\x01bin\xff\x80\n\"\\\x7f\t\x1bend";
/// Control characters (no NUL: %j would stop there) for JSON escapes.
const CONTROL: &str = "ctl\x01\x02\x1b\x7f\x08\x0c\r\t \"q\" \\ \u{e9} end";
/// Numbers and strings that cJSON prints in its own way.
const JSON2: &str = r#"[12345678901234567890, 1.5e-7, 1e23, 3.0, -12.25e3, 0.30000000000000004, 1e308, 5e-324, 01, [{"\u00e9\ud83d\ude00\/": "\b\f"}], [], {}, null, false]"#;
const JSON: &str =
    r#"{"a": [1, 2.50, -0.0, 1e20, 0.1], "b": {"c": null}, "t": true, "s": "x\u00e9\n\"q\""}"#;

/// The formats compared (besides time fields, which differ by nature).
fn format_cases(v5: bool) -> Vec<Vec<&'static str>> {
    let mut cases = vec![
        vec!["-F", "%t %p %q %r %l %m"],
        vec!["-F", "%x|%X|%5x|%-12X|%08p|%-8p|%3p|%.2t|%10.4t|%-10t|%05l|%-5m|%%|\\t|\\0|\\e|\\\\|\\a|\\v|\\r|@@|%-p|%-x|%07m"],
        vec!["-F", "%j"],
        vec!["-F", "%J"],
        vec!["-F", "[%j]", "--pretty"],
        vec!["-F", "%J", "--pretty"],
        vec!["-v"],
        vec![],
        vec!["-N", "-F", "%t:%l;"],
        // The v5 fields are blank (or padding) where a message has no properties.
        vec!["-F", "%A|%C|%D|%E|%F|%P|%R|%S|%5C|%-6E|%03F|%8R|%.3C|%05S|%-4A|%3D|%08A|%-3S|"],
    ];
    if v5 {
        cases.push(vec![
            "-D",
            "subscribe",
            "subscription-identifier",
            "42",
            "-F",
            "%A|%C|%D|%E|%F|%P|%R|%S|%5C|%-6E|%03F|%8R|%.3C|%05S|%-4A|%3D|%j",
        ]);
    }
    cases
}

fn publish_the_messages(broker: &Broker, v5: bool, version: &str) {
    let file =
        std::env::temp_dir().join(format!("linnet-cli-bin-{}-{version}", std::process::id()));
    std::fs::write(&file, BINARY).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let port = broker.tcp.as_str();
    let linnet_pub = |args: &[&str]| {
        let mut all = vec!["pub", "-p", port, "-V", version];
        all.extend_from_slice(args);
        ok(LINNET, &all, None);
    };
    let mosquitto_pub = |args: &[&str]| {
        let mut all = vec!["-p", port, "-V", version];
        all.extend_from_slice(args);
        ok("mosquitto_pub", &all, None);
    };
    linnet_pub(&["-t", "cmp/text", "-m", "hello world"]);
    mosquitto_pub(&["-t", "cmp/q1", "-m", "from mosquitto_pub", "-q", "1"]);
    linnet_pub(&["-t", "cmp/q2", "-m", "exactly once", "-q", "2"]);
    linnet_pub(&["-t", "cmp/bin", "-f", &file, "-q", "1"]);
    mosquitto_pub(&["-t", "cmp/bin/mosquitto", "-f", &file, "-q", "2"]);
    linnet_pub(&["-t", "cmp/json", "-m", JSON]);
    linnet_pub(&["-t", "cmp/empty", "-n", "-q", "1"]);
    mosquitto_pub(&["-t", "cmp/ctl", "-m", CONTROL]);
    linnet_pub(&["-t", "cmp/json2", "-m", JSON2]);
    linnet_pub(&["-t", "cmp/live/retained", "-m", "kept", "-r"]);
    linnet_pub(&["-t", "cmp/a/rather/long/topic/name", "-m", "x"]);
    if v5 {
        let props = [
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-D",
            "publish",
            "user-property",
            "k2",
            "v 2",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "response-topic",
            "re/ply",
            "-D",
            "publish",
            "correlation-data",
            "abc",
            "-D",
            "publish",
            "payload-format-indicator",
            "1",
        ];
        let mut args = vec!["-t", "cmp/props", "-m", "with properties", "-q", "1"];
        args.extend_from_slice(&props);
        linnet_pub(&args);
        let mut args = vec!["-t", "cmp/props/mosquitto", "-m", "{\"j\":1}", "-q", "2"];
        args.extend_from_slice(&props);
        mosquitto_pub(&args);
    }
    std::fs::remove_file(&file).ok();
}

fn compare_version(version: &str) {
    if !mosquitto_available() {
        return;
    }
    let v5 = version == "5";
    let broker = Broker::start();
    // The retained message every subscriber gets first (it shows the subscription is in place).
    broker.publish(&["-t", "cmp/0", "-m", "ready", "-r", "-q", "1"]);
    let count = 1 + 11 + if v5 { 2 } else { 0 };
    let cases = format_cases(v5);
    let outputs = compare_with_mosquitto(&broker, version, &cases, count, || {
        publish_the_messages(&broker, v5, version)
    });
    // And what mosquitto_sub printed is what was published (linnet pub -> mosquitto_sub):
    // "%t %p %q %r %l %m".
    let mut expected = Vec::new();
    let mut line = |topic: &str, payload: &[u8], qos: u8, retain: u8, mid: u16| {
        expected.extend_from_slice(topic.as_bytes());
        expected.push(b' ');
        expected.extend_from_slice(payload);
        let rest = format!(" {qos} {retain} {} {mid}\n", payload.len());
        expected.extend_from_slice(rest.as_bytes());
    };
    line("cmp/0", b"ready", 1, 1, 1);
    line("cmp/text", b"hello world", 0, 0, 0);
    line("cmp/q1", b"from mosquitto_pub", 1, 0, 2);
    line("cmp/q2", b"exactly once", 2, 0, 3);
    line("cmp/bin", BINARY, 1, 0, 4);
    line("cmp/bin/mosquitto", BINARY, 2, 0, 5);
    line("cmp/json", JSON.as_bytes(), 0, 0, 0);
    line("cmp/empty", b"", 1, 0, 6);
    line("cmp/ctl", CONTROL.as_bytes(), 0, 0, 0);
    line("cmp/json2", JSON2.as_bytes(), 0, 0, 0);
    line("cmp/live/retained", b"kept", 0, 0, 0);
    line("cmp/a/rather/long/topic/name", b"x", 0, 0, 0);
    if v5 {
        line("cmp/props", b"with properties", 1, 0, 7);
        line("cmp/props/mosquitto", b"{\"j\":1}", 2, 0, 8);
    }
    assert!(
        outputs[0] == expected,
        "mosquitto_sub printed\n{}\nexpected\n{}",
        outputs[0].escape_ascii(),
        expected.escape_ascii()
    );
}

#[test]
fn same_output_as_mosquitto_sub_v311() {
    compare_version("311");
}

#[test]
fn same_output_as_mosquitto_sub_v5() {
    compare_version("5");
}

/// Digits as '9': the shape of a time stamp.
fn shape(out: &[u8]) -> Vec<u8> {
    out.iter()
        .map(|&b| if b.is_ascii_digit() { b'9' } else { b })
        .collect()
}

#[test]
fn time_fields_like_mosquitto_sub_in_utc() {
    if !mosquitto_available() {
        return;
    }
    let broker = Broker::start();
    broker.publish(&["-t", "time/x", "-m", "t", "-r", "-V", "5"]);
    // The date part must be equal (one retry in case midnight passed between the two);
    // after the '|', times to the second and below: the same shape.
    let format = "@Y-@m-@d @j @a @b @A @B @y @C @e @u @w @D @F @h @@ @G @g @V @U @W @3 @9 @_ @E @q @+ @%|%I|%U|@H:@M:@S.@N|@s|@T|@R|%j";
    for attempt in 0.. {
        let args = [
            "-p",
            &broker.tcp,
            "-V",
            "5",
            "-t",
            "time/#",
            "-C",
            "1",
            "-F",
            format,
        ];
        let mosquitto = ok("mosquitto_sub", &args, None).stdout;
        let mut linnet_args = vec!["sub"];
        linnet_args.extend_from_slice(&args);
        let linnet = ok(LINNET, &linnet_args, None).stdout;
        let day = |out: &[u8]| {
            out.split(|&b| b == b'|')
                .next()
                .unwrap_or_default()
                .to_vec()
        };
        if day(&mosquitto) != day(&linnet) && attempt == 0 {
            continue;
        }
        assert_eq!(
            day(&mosquitto).escape_ascii().to_string(),
            day(&linnet).escape_ascii().to_string()
        );
        assert_eq!(
            shape(&mosquitto).escape_ascii().to_string(),
            shape(&linnet).escape_ascii().to_string()
        );
        break;
    }
}

#[test]
fn sub_ends_quietly_when_stdout_closes() {
    let broker = Broker::start();
    broker.publish(&["-t", "bp/retained", "-m", "first", "-r"]);
    let mut guard = KillOnDrop(
        Command::new(LINNET)
            .args(["sub", "-p", &broker.tcp, "-t", "bp/#"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut guard.0;
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    stdout.read_exact(&mut first).unwrap(); // "first\n": subscribed
    assert_eq!(&first, b"first\n");
    drop(stdout); // like `linnet sub ... | head -n 1`
    let start = Instant::now();
    let status = loop {
        broker.publish(&["-t", "bp/live", "-m", "next"]);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            child.kill().ok();
            panic!("linnet sub did not end after its stdout closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
}

/// Kills the child (by its handle) if the test ends early.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn sub_reconnect_survives_a_broker_restart() {
    let broker = Broker::start();
    let (tcp, ws) = (broker.tcp.parse().unwrap(), broker.ws.parse().unwrap());
    let mut sub = broker.subscriber(&["-t", "rc/#", "--reconnect", "-C", "1", "-W", "25", "-v"]);
    drop(broker); // killed
    sub.wait_stderr("reconnecting");
    let mut again = None;
    let start = Instant::now();
    while again.is_none() && start.elapsed() < DEADLINE {
        again = Broker::start_on(tcp, ws, &[]); // the port may linger a moment
    }
    let broker = again.expect("the broker did not restart on its ports");
    sub.wait_stderr("after reconnecting");
    // The new broker has no session, so the client subscribes again: publish until the
    // message arrives (the SUBSCRIBE may still be on its way).
    let start = Instant::now();
    while sub.stdout().is_empty() && start.elapsed() < DEADLINE {
        broker.publish(&["-t", "rc/x", "-m", "back"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = sub.finish().expect_success();
    assert_eq!(out.stdout_str(), "rc/x back\n");
}
