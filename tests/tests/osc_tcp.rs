//! OSC over TCP, end to end: the real gateway and bridge, driven by clients the project did not
//! write: liblo's `oscsend osc.tcp://` (length-prefixed, OSC 1.0) and python-osc's TCP client
//! (SLIP, OSC 1.1, the framing TouchOSC uses; and length-prefixed), which also reads the feedback
//! that comes back on its connection.

use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use kubeknobs_tests::harness::{Process, python_with, require_tool};
use kubeknobs_tests::pipeline::{Pipeline, connected};

const SANDBOX: &str = "backend = \"sandbox\"";
const WEB: (&str, &str) = ("default", "web");

/// python-osc's TCP client in mode argv[2] ("1.1": SLIP, "1.0": length-prefixed) connected to
/// port argv[1]: sends `/1/fader1 argv[3]`, prints `sent`, then prints `got ADDRESS [ARGS]` for
/// every message that comes back on the connection, for 30 s. Frames are split here (python-osc's
/// own `receive` assumes a read never ends inside a frame); each is decoded by python-osc.
const PHONE: &str = r#"
import socket, struct, sys, time
from pythonosc import slip
from pythonosc.osc_message import OscMessage
from pythonosc.tcp_client import SimpleTCPClient

port, mode, value = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
client = SimpleTCPClient("127.0.0.1", port, mode=mode)
client.send_message("/1/fader1", value)
print("sent", flush=True)
sock = client.socket
sock.settimeout(0.5)
buf = b""

def frames():
    global buf
    if mode == "1.1":
        *done, buf = buf.split(slip.END)
        return [slip.decode(f) for f in done if f]
    out = []
    while len(buf) >= 4 and len(buf) >= 4 + struct.unpack("!I", buf[:4])[0]:
        size = struct.unpack("!I", buf[:4])[0]
        out.append(buf[4:4 + size])
        buf = buf[4 + size:]
    return out

deadline = time.time() + 30
while time.time() < deadline:
    try:
        chunk = sock.recv(4096)
    except socket.timeout:
        continue
    if not chunk:
        print("closed", flush=True)
        break
    buf += chunk
    for dgram in frames():
        message = OscMessage(dgram)
        print("got", message.address, message.params, flush=True)
"#;

/// python-osc sending `value` in `mode` to the bridge's OSC TCP port, once it has sent.
fn python_phone(p: &Pipeline, mode: &str, value: &str) -> Process {
    let python = python_with("pythonosc.tcp_client", "python-osc");
    let mut command = Command::new(python);
    command
        .args(["-c", PHONE])
        .arg(tcp(p).port().to_string())
        .args([mode, value]);
    let phone = Process::spawn("python-osc", command);
    phone.wait_for(&["sent"]);
    phone
}

fn tcp(p: &Pipeline) -> SocketAddr {
    p.bridge
        .osc_tcp
        .expect("the pipeline's bridge listens for OSC over TCP")
}

/// A phone on `mode` moves the fader to `value`; the gateway applies `replicas`, and the phone's
/// fader and label show the cluster's state, on its own connection.
fn fader_and_feedback_over_tcp(mode: &str, value: &str, replicas: u32) {
    let p = connected(SANDBOX, WEB);
    let phone = python_phone(&p, mode, value);
    p.gateway
        .process
        .wait_for(&["applied", &format!("value={replicas}"), "operator=alice"]);
    p.bridge
        .process
        .wait_for(&["new OSC client", "tcp 127.0.0.1:"]);
    phone.wait_for(&["got /1/fader1", &format!("[{value}]")]);
    phone.wait_for(&["got /1/label1", &format!("web {replicas}/{replicas}")]);
    // Feedback went back on the connection only: the UDP phone (oscdump) never sent, so it is
    // not a client, and gets nothing.
    assert!(p.phone.messages().is_empty(), "{:?}", p.phone.messages());
}

#[test]
fn a_slip_client_moves_the_fader_and_gets_feedback_on_its_connection() {
    fader_and_feedback_over_tcp("1.1", "0.25", 5);
}

#[test]
fn a_length_prefixed_client_moves_the_fader_and_gets_feedback_on_its_connection() {
    fader_and_feedback_over_tcp("1.0", "0.75", 15);
}

#[test]
fn liblo_oscsend_over_tcp_moves_the_fader() {
    require_tool("oscsend");
    let p = connected(SANDBOX, WEB);
    let url = format!("osc.tcp://127.0.0.1:{}", tcp(&p).port());
    let status = Command::new("oscsend")
        .args([url.as_str(), "/1/fader1", "f", "0.5"])
        .status()
        .expect("run oscsend");
    assert!(status.success(), "oscsend failed: {status}");
    p.gateway.process.wait_for(&["applied", "value=10"]);
    p.bridge
        .process
        .wait_for(&["OSC TCP client disconnected", "closed by the client"]);
}

#[test]
fn broken_framing_closes_only_that_connection() {
    let p = connected(SANDBOX, WEB);
    // A SLIP escape byte followed by a byte that is not an escape code.
    let mut bad = TcpStream::connect(tcp(&p)).expect("connect");
    bad.write_all(b"\xc0/1/fader1\xdb\x41\xc0").expect("write");
    p.bridge.process.wait_for(&[
        "OSC TCP client disconnected",
        "SLIP escape byte followed by 0x41",
    ]);
    // A length prefix over the limit: refused before anything is buffered.
    let mut huge = TcpStream::connect(tcp(&p)).expect("connect");
    huge.write_all(&[0x00, 0x10, 0x00, 0x00]).expect("write");
    p.bridge
        .process
        .wait_for(&["OSC TCP client disconnected", "more than 65536 bytes"]);
    assert!(p.bridge.process.is_running(), "the bridge survives");
    // Not OSC, but well framed: logged as malformed, and the connection stays.
    let mut noise = TcpStream::connect(tcp(&p)).expect("connect");
    noise.write_all(b"\xc0garbage\xc0").expect("write");
    p.bridge.process.wait_for(&["malformed OSC packet"]);
    let phone = python_phone(&p, "1.1", "0.5");
    p.gateway.process.wait_for(&["applied", "value=10"]);
    phone.wait_for(&["got /1/fader1", "[0.5]"]);
    drop(noise);
}

/// An OSC message with one float argument, as bytes (address and type tag padded to 4).
fn osc_float(address: &str, value: f32) -> Vec<u8> {
    let mut bytes = Vec::new();
    for text in [address, ",f"] {
        bytes.extend_from_slice(text.as_bytes());
        bytes.resize((bytes.len() / 4 + 1) * 4, 0);
    }
    bytes.extend_from_slice(&value.to_be_bytes());
    bytes
}

#[test]
fn tcp_clients_stay_connected_through_a_config_reload() {
    let p = connected(SANDBOX, WEB);
    let phone = python_phone(&p, "1.1", "0.25");
    phone.wait_for(&["got /1/label1", "web 5/5"]);
    let mut quiet = TcpStream::connect(tcp(&p)).expect("connect");

    let path = p.dir.path().join("bridge.toml");
    let config = std::fs::read_to_string(&path).expect("read bridge.toml");
    std::fs::write(&path, config.replace("/1/label1", "/1/label2")).expect("edit");
    p.bridge.process.hang_up();
    p.bridge.process.wait_for(&["config reloaded"]);

    // The new pipeline's feedback reaches the phone on the connection it opened before.
    phone.wait_for(&["got /1/label2", "web 5/5"]);
    // And what a connection opened before the reload sends reaches the new pipeline.
    let packet = osc_float("/1/fader1", 0.5);
    let mut framed = u32::try_from(packet.len()).unwrap().to_be_bytes().to_vec();
    framed.extend(packet);
    quiet.write_all(&framed).expect("write");
    p.gateway.process.wait_for(&["applied", "value=10"]);
    assert!(
        !p.bridge.process.printed("OSC TCP client disconnected"),
        "no connection was dropped by the reload"
    );
}
