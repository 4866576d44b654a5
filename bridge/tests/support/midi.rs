//! Helpers for the MIDI tests: a bridge config with MIDI bindings, a running bridge wired to the
//! fake gateway, and the control events it sends, forwarded to a channel (so waiting for one
//! with a timeout never cancels a read half-way); an OSC client that sees each state change the
//! bridge's feedback task has handled; and a python-rtmidi control surface over JACK ([`Peer`]).

use std::net::SocketAddr;
use std::time::Duration;

use kubeknobs_bridge::config::MidiConfig;
use kubeknobs_bridge::mapping::{Mapping, Range};
use kubeknobs_bridge::midi::binding::{Binding, Curve};
use kubeknobs_bridge::midi::control::{Control, Mode};
use kubeknobs_proto::v1::{
    ControlEvent, Presence, PresentOperator, ServerMessage, StateUpdate, client_message,
    server_message,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use super::{Session, server, start_gateway, state};

/// How long anything may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// The OSC address of the presence text the observer uses as a marker.
const SYNC: &str = "/kk/presence";

/// `cc N` on channel 1 driving `web`, with feedback.
pub fn cc(number: u8) -> Binding {
    Binding {
        control: Control::Cc(number),
        channel: Some(0),
        mode: Mode::Absolute,
        invert: false,
        curve: Curve::Linear,
        pickup: false,
        feedback: true,
        encoder: Default::default(),
        mapping: Mapping {
            address: format!("midi ch1 cc{number}"),
            target: "web".into(),
            range: Range::default(),
            label: None,
        },
    }
}

/// A MIDI config that rescans every 200 ms.
pub fn midi(inputs: &[&str], outputs: &[&str], bindings: Vec<Binding>) -> MidiConfig {
    MidiConfig {
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        rescan: Duration::from_millis(200),
        serial: Vec::new(),
        bindings,
    }
}

/// A running bridge, its gateway session, and the control events it sends.
pub struct Running {
    pub to_bridge: mpsc::Sender<Result<ServerMessage, tonic::Status>>,
    pub controls: mpsc::UnboundedReceiver<ControlEvent>,
    pub osc: SocketAddr,
    /// An OSC client of the bridge: it gets `/1/fader1` for every state change feedback handles
    /// (after handing its Level to the MIDI side).
    observer: UdpSocket,
    /// How many presence marks `push_handled` has sent.
    marks: std::sync::atomic::AtomicU64,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<kubeknobs_bridge::Result<()>>,
    _stop_gateway: oneshot::Sender<()>,
}

/// Starts the fake gateway and a bridge with `midi` and OSC `/1/fader1` → `web`; waits for the
/// session.
pub async fn start(midi: MidiConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    let gateway = listener.local_addr().expect("gateway addr");
    let (mut sessions, stop_gateway) = start_gateway(listener);
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind osc");
    let osc_addr = socket.local_addr().expect("osc addr");
    let observer = UdpSocket::bind("127.0.0.1:0").await.expect("bind observer");
    let feedback_port = observer.local_addr().expect("observer addr").port();
    let mut config = super::bridge_config(gateway, osc_addr, feedback_port, None, midi);
    // Presence texts mark how far feedback has got (see `push_handled`).
    config.osc.presence_label = Some(SYNC.into());
    let (stop, stopped) = oneshot::channel::<()>();
    let options = kubeknobs_bridge::Options {
        socket: Some(socket),
        ..Default::default()
    };
    let task = tokio::spawn(kubeknobs_bridge::run(config, options, async {
        let _ = stopped.await;
    }));
    let Session {
        hello,
        to_bridge,
        mut from_bridge,
    } = timeout(WAIT, sessions.recv())
        .await
        .expect("session in time")
        .expect("gateway running");
    assert_eq!(hello.bridge_id, "test-bridge");
    let (tx, controls) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(m)) = from_bridge.message().await {
            if let Some(client_message::Msg::Control(c)) = m.msg {
                let _ = tx.send(c);
            }
        }
    });
    // Become an OSC client (a packet for no mapping), and wait for the state it is shown.
    let hello = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: "/kk/hello".into(),
        args: vec![],
    }))
    .expect("encode");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut buf = vec![0u8; 65536];
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no OSC feedback in time"
        );
        observer
            .send_to(&hello, osc_addr)
            .await
            .expect("send hello");
        if let Ok(Ok(_)) = timeout(Duration::from_millis(200), observer.recv_from(&mut buf)).await {
            break;
        }
    }
    Running {
        to_bridge,
        controls,
        osc: osc_addr,
        observer,
        marks: Default::default(),
        stop,
        task,
        _stop_gateway: stop_gateway,
    }
}

impl Running {
    /// Calls `poke` (e.g. "send a CC") every 100 ms until a control event arrives; returns it.
    /// Until a device is connected its messages go nowhere, so a test keeps moving the control.
    pub async fn control_while(&mut self, mut poke: impl FnMut()) -> ControlEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no control event in time"
            );
            poke();
            if let Ok(Some(c)) = timeout(Duration::from_millis(100), self.controls.recv()).await {
                return c;
            }
        }
    }

    /// Pushes a state update for `web`.
    pub async fn push_state(&self, desired: f64) {
        self.push(desired, desired).await;
    }

    /// Pushes a state update for `web` with its ready count.
    pub async fn push(&self, desired: f64, ready: f64) {
        let update = StateUpdate {
            states: vec![state(desired, ready)],
        };
        self.to_bridge
            .send(Ok(server(server_message::Msg::State(update))))
            .await
            .expect("send state");
    }

    /// Pushes a state update and waits until the bridge's feedback task has handled it (its
    /// Level is queued for the MIDI side). OSC feedback is sent only when what a control shows
    /// changes, so an update may send the observer nothing: a presence with a fresh text, sent
    /// after the update and handled after it, marks that the update is through.
    pub async fn push_handled(&self, desired: f64, ready: f64) {
        self.push(desired, ready).await;
        let mark = format!(
            "sync-{}",
            self.marks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let presence = Presence {
            operators: vec![PresentOperator {
                name: mark.clone(),
                bridges: vec![],
            }],
        };
        self.to_bridge
            .send(Ok(server(server_message::Msg::Presence(presence))))
            .await
            .expect("send presence");
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (len, _) = timeout(left, self.observer.recv_from(&mut buf))
                .await
                .expect("the bridge handles a state update in time")
                .expect("receive OSC feedback");
            if let Ok((_, rosc::OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..len])
                && m.addr == SYNC
                && m.args == [rosc::OscType::String(mark.clone())]
            {
                return;
            }
        }
    }

    /// Waits up to `window` for a control event; `None` when there was none.
    pub async fn control_within(&mut self, window: Duration) -> Option<ControlEvent> {
        timeout(window, self.controls.recv()).await.ok().flatten()
    }

    /// Drops control events until none has come for 300 ms (a probe poked more than once).
    pub async fn settle(&mut self) {
        while self
            .control_within(Duration::from_millis(300))
            .await
            .is_some()
        {}
    }

    /// The next control event (within [`WAIT`]).
    pub async fn next_control(&mut self) -> ControlEvent {
        timeout(WAIT, self.controls.recv())
            .await
            .expect("a control event in time")
            .expect("events")
    }

    /// Stops the bridge and checks it ended cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let result = timeout(WAIT, self.task)
            .await
            .expect("bridge stops in time")
            .expect("no panic");
        assert!(result.is_ok(), "bridge failed: {result:?}");
    }
}

/// Waits until `rx` yields `want` as a contiguous run of bytes; returns everything seen.
pub fn expect_bytes(rx: &std::sync::mpsc::Receiver<Vec<u8>>, want: &[u8]) -> Vec<u8> {
    let deadline = std::time::Instant::now() + WAIT;
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(bytes) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.extend(bytes);
            if seen.windows(want.len()).any(|w| w == want) {
                return seen;
            }
        }
    }
    panic!("never saw {want:02X?}; saw {seen:02X?}");
}

/// JACK's ports now, each with the ports it is connected to, as `jack_lsp -c` lists them.
async fn jack_ports() -> Vec<(String, Vec<String>)> {
    let out = tokio::process::Command::new("jack_lsp")
        .arg("-c")
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run jack_lsp (JACK's tools, beside jackd): {e}"));
    assert!(
        out.status.success(),
        "jack_lsp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut ports: Vec<(String, Vec<String>)> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // A port at the start of a line, then each port it is connected to, indented.
        match ports.last_mut() {
            Some((_, peers)) if line.starts_with(char::is_whitespace) => {
                peers.push(line.trim().to_owned());
            }
            _ => ports.push((line.trim().to_owned(), Vec::new())),
        }
    }
    ports
}

/// Polls JACK's ports until `found` finds something in them (within [`WAIT`]); returns it.
async fn wait_for_jack<T>(what: &str, found: impl Fn(&[(String, Vec<String>)]) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ports = jack_ports().await;
        if let Some(found) = found(&ports) {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} in time; JACK has {ports:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The bridge's JACK port connected to `device` (`client:port`), once the bridge has connected
/// it (at a rescan after the device appeared).
pub async fn bridge_port(device: &str) -> String {
    let client = kubeknobs_bridge::midi::ports::CLIENT;
    wait_for_jack(&format!("the bridge connects {device}"), |ports| {
        let (_, peers) = ports.iter().find(|(name, _)| name == device)?;
        peers.iter().find(|peer| peer.starts_with(client)).cloned()
    })
    .await
}

/// Waits until JACK no longer has `port`: the bridge has closed its connection (at a rescan
/// after the device went away).
pub async fn port_closed(port: &str) {
    wait_for_jack(&format!("the bridge closes {port}"), |ports| {
        (!ports.iter().any(|(name, _)| name == port)).then_some(())
    })
    .await
}

/// A control surface played by python-rtmidi (a third-party MIDI library) over JACK: an output
/// port `<client>:surface` it sends from, and an input port `<client>:leds` (JACK may name that
/// client `<client>-01`) whose every event it reports as a line, one event per line.
pub struct Peer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    events: std::sync::mpsc::Receiver<Vec<u8>>,
}

const PEER: &str = r#"
import sys, rtmidi
name = sys.argv[1]
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
out.open_virtual_port("surface")
inp = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=name)
inp.ignore_types(sysex=False, timing=True, active_sense=True)
def got(event, data):
    print("got " + " ".join("%02X" % b for b in event[0]), flush=True)
inp.set_callback(got)
inp.open_virtual_port("leds")
print("ready", flush=True)
for line in sys.stdin:
    parts = line.split()
    if parts and parts[0] == "send":
        out.send_message([int(x, 16) for x in parts[1:]])
        print("sent", flush=True)
"#;

impl Peer {
    /// Starts the surface `client` and waits until its ports exist.
    pub fn start(client: &str) -> Peer {
        use std::io::BufRead;
        let python = std::env::var("KUBEKNOBS_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = std::process::Command::new(&python)
            .arg("-c")
            .arg(PEER)
            .arg(client)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, events) = std::sync::mpsc::channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(hex) = line.strip_prefix("got ") {
                    let bytes = hex
                        .split_whitespace()
                        .map(|b| u8::from_str_radix(b, 16).expect("hex byte"))
                        .collect();
                    let _ = tx.send(bytes);
                } else {
                    let _ = ready_tx.send(line);
                }
            }
        });
        let line = ready.recv_timeout(WAIT);
        assert!(
            matches!(&line, Ok(l) if l == "ready"),
            "python-rtmidi did not open its JACK ports ({line:?}); is it installed for {python}? \
             (.ci/run installs it and sets KUBEKNOBS_PYTHON)"
        );
        Peer {
            child,
            stdin,
            events,
        }
    }

    /// Sends one MIDI message from the surface.
    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
        writeln!(self.stdin, "send {}", hex.join(" ")).expect("write to python-rtmidi");
        self.stdin.flush().expect("flush");
    }

    /// Waits until the surface has received `want`, each message as its own event, in order
    /// (other events may come before); returns everything received up to the last of them.
    pub fn expect(&self, want: &[&[u8]]) -> Vec<Vec<u8>> {
        let deadline = std::time::Instant::now() + WAIT;
        let mut seen: Vec<Vec<u8>> = Vec::new();
        loop {
            let found = seen
                .windows(want.len())
                .any(|w| w.iter().zip(want).all(|(a, b)| a.as_slice() == *b));
            if found {
                return seen;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => seen.push(event),
                Err(_) => panic!("never received {want:02X?} as separate events; got {seen:02X?}"),
            }
        }
    }

    /// Every event received within `window` (to check that nothing more arrives).
    pub fn received_within(&self, window: Duration) -> Vec<Vec<u8>> {
        let deadline = std::time::Instant::now() + window;
        let mut seen = Vec::new();
        while let Ok(event) = self
            .events
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            seen.push(event);
        }
        seen
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
