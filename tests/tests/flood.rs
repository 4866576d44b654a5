//! Floods against the real binaries on 127.0.0.1 (issue 13): each asserts the bound on what a
//! hostile client can take (connections, slots, log lines) and that a legitimate client is
//! still served meanwhile. Floods come from other loopback addresses (127.0.0.2, …) where the
//! bound is per peer, so the legitimate client on 127.0.0.1 is a different peer, as it would be
//! on a real network. Counts and durations are bounded.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use kubeknobs_proto::v1::knobs_client::KnobsClient;
use kubeknobs_proto::v1::{
    ClientMessage, OutcomeKind, RejectReason, TouchEvent, client_message, server_message,
};
use kubeknobs_tests::grpc::{control, hello, outcome};
use kubeknobs_tests::harness::{DEADLINE, Gateway, gen_certs, require_tool};
use kubeknobs_tests::pipeline::{TOKEN, connected, gateway_config};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const SANDBOX: &str = "backend = \"sandbox\"";

/// A sandbox gateway process with `server` keys added to its config.
fn gateway(server: &str) -> (tempfile::TempDir, Gateway) {
    let dir = tempfile::tempdir().expect("tempdir");
    gen_certs(dir.path());
    let config = gateway_config(SANDBOX, "default", "web")
        .replace("[server]\n", &format!("[server]\n{server}\n"));
    let gateway = Gateway::start(dir.path(), &config);
    (dir, gateway)
}

/// A TLS channel to the gateway, trusting `dir/certs/ca.pem`.
async fn channel(dir: &std::path::Path, addr: SocketAddr) -> Channel {
    let ca = std::fs::read(dir.join("certs/ca.pem")).expect("ca.pem");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .expect("uri")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connect")
}

/// Opens a session as `token` and returns its sender and the first server message.
async fn session(
    channel: Channel,
    token: &str,
) -> Result<
    (
        tokio::sync::mpsc::Sender<ClientMessage>,
        tonic::Streaming<kubeknobs_proto::v1::ServerMessage>,
    ),
    tonic::Status,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    tx.send(hello()).await.expect("queue hello");
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    let mut stream = KnobsClient::new(channel)
        .session(request)
        .await?
        .into_inner();
    let first = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("a message in time")?
        .expect("stream open");
    assert!(
        matches!(first.msg, Some(server_message::Msg::Welcome(_))),
        "{first:?}"
    );
    Ok((tx, stream))
}

/// Opens `n` raw TCP connections to `to` from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((from, 0)))
            .expect("bind to a loopback address");
        streams.push(socket.connect(to).await.expect("connect"));
    }
    streams
}

/// How many of `streams` the server still holds open after `wait` (the others it closed).
async fn still_open(streams: Vec<TcpStream>, wait: Duration) -> usize {
    let reads = streams.into_iter().map(|mut s| async move {
        let mut buf = [0u8; 64];
        // Open: nothing to read until the wait is over. Closed: end of file or a reset.
        matches!(
            tokio::time::timeout(wait, s.read(&mut buf)).await,
            Err(_) | Ok(Ok(1..))
        )
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .filter(|open| *open)
        .count()
}

/// 20,000 idle connections once took every file descriptor and locked bridges out. Pending
/// (unauthenticated) connections are now bounded per peer and in total, and closed when they do
/// not authenticate in time; a legitimate client gets in during the flood; sheds are summarised.
#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_connections_are_bounded_and_time_out() {
    let (dir, gw) =
        gateway("max_pending_connections = 32\nmax_pending_per_peer = 8\nauth_timeout_ms = 3000");
    let flood = connect_from([127, 0, 0, 2], gw.addr, 100).await;
    let started = Instant::now();

    // During the flood, a bridge-like client from another address authenticates.
    let (tx, _stream) = session(channel(dir.path(), gw.addr).await, TOKEN)
        .await
        .expect("the legitimate client is served");
    drop(tx);
    assert_eq!(
        still_open(flood, Duration::from_millis(1500)).await,
        8,
        "only max_pending_per_peer connections from one peer are held"
    );

    // Many peers: the total bound holds.
    let mut wide = Vec::new();
    for peer in 3..13 {
        wide.extend(connect_from([127, 0, 0, peer], gw.addr, 8).await);
    }
    let open = still_open(wide, Duration::from_millis(500)).await;
    assert!(open <= 32, "{open} pending connections held, max 32");

    // None of them authenticates: all are closed once auth_timeout_ms is over.
    let late = connect_from([127, 0, 0, 20], gw.addr, 4).await;
    assert_eq!(
        still_open(late, Duration::from_millis(6000)).await,
        0,
        "pending connections outlived auth_timeout_ms"
    );
    assert!(started.elapsed() < DEADLINE);

    // Shed connections are logged once per peer and kind, then in a summary, not one by one.
    gw.process
        .wait_for(&["in the last", "connections closed at once"]);
    let lines = gw
        .process
        .output()
        .iter()
        .filter(|l| l.contains("connections closed at once"))
        .count();
    assert!(lines <= 15, "{lines} lines about shed connections");
}

/// A TLS handshake failure is logged (it was not at all), once per peer and window.
#[tokio::test(flavor = "multi_thread")]
async fn failed_tls_handshakes_are_logged_as_a_summary() {
    use tokio::io::AsyncWriteExt;
    let (_dir, gw) = gateway("");
    for _ in 0..30 {
        let mut s = connect_from([127, 0, 0, 2], gw.addr, 1).await.remove(0);
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    }
    gw.process.wait_for(&["TLS handshake failed", "127.0.0.2"]);
    gw.process
        .wait_for(&["in the last", "30 TLS handshakes failed", "127.0.0.2: 30"]);
    let lines = gw
        .process
        .output()
        .iter()
        .filter(|l| l.contains("TLS handshake failed"))
        .count();
    assert_eq!(lines, 1, "one line per peer and window");
}

/// Guessing tokens: each refusal was a WARN line, ≈700 per second on one connection. Now the
/// connection is closed after a few failures, refusals are summarised per peer, and the right
/// token still gets in.
#[tokio::test(flavor = "multi_thread")]
async fn failed_authentication_is_slowed_and_summarised() {
    let (dir, gw) = gateway("");
    let guesser = channel(dir.path(), gw.addr).await;
    let mut refused = 0;
    let mut broken = 0;
    for i in 0..100 {
        match session(guesser.clone(), &format!("wrong-token-{i}")).await {
            Err(status) if status.code() == tonic::Code::Unauthenticated => refused += 1,
            Err(_) => broken += 1,
            Ok(_) => panic!("a wrong token got in"),
        }
    }
    assert!(broken > 0, "the guessing connection was never closed");
    assert!(refused >= 5, "{refused} refused");
    let (_tx, _stream) = session(channel(dir.path(), gw.addr).await, TOKEN)
        .await
        .expect("the right token gets in");
    let lines = gw
        .process
        .output()
        .iter()
        .filter(|l| l.contains("session refused"))
        .count();
    assert!(lines <= 2, "{lines} lines for {refused} refusals");
}

/// 3,000 touches with 60 KB target names wrote 180 MB of log in 3 s. Touches now count against
/// the operator's event rate, what is ignored is summarised, and names are clipped: the log
/// stays small, no line is forged, and a move made once the operator's event budget has
/// refilled is applied.
#[tokio::test(flavor = "multi_thread")]
async fn a_touch_flood_with_huge_names_does_not_fill_the_log() {
    let (dir, gw) = gateway("");
    let (tx, mut stream) = session(channel(dir.path(), gw.addr).await, TOKEN)
        .await
        .expect("session");
    let name = format!(
        "web\n2026-01-01T00:00:00Z  INFO forged\u{1b}[2J{}",
        "n".repeat(60_000)
    );
    let before: usize = gw.process.output().iter().map(String::len).sum();
    for _ in 0..3000 {
        let touch = ClientMessage {
            msg: Some(client_message::Msg::Touch(TouchEvent {
                target: name.clone(),
                touched: true,
            })),
        };
        if tx.send(touch).await.is_err() {
            break;
        }
    }
    // A move on the same session is applied once the event budget has refilled (the touches
    // took it; under load they may still be arriving for a while).
    let started = Instant::now();
    for seq in 1.. {
        tx.send(control(seq, "web", 7.0)).await.expect("send move");
        let o = outcome(&mut stream, seq).await;
        if o.kind == OutcomeKind::Applied as i32 {
            break;
        }
        assert_eq!(o.reason, RejectReason::RateLimited as i32, "{o:?}");
        assert!(started.elapsed() < DEADLINE, "the move was never applied");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let out = gw.process.output();
    let after: usize = out.iter().map(String::len).sum();
    assert!(
        after - before < 64 * 1024,
        "{} bytes of log for 3,000 touches",
        after - before
    );
    assert!(
        !out.iter().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line"
    );
}

/// An unauthenticated UDP flood of the bridge (unknown addresses, garbage) wrote a log line per
/// datagram. Now they are summarised per sender, and a real move still gets through.
#[test]
fn a_udp_flood_of_the_bridge_does_not_fill_its_log() {
    let p = connected(SANDBOX, ("default", "web"));
    let socket = std::net::UdpSocket::bind("127.0.0.2:0").expect("bind");
    let bridge = SocketAddr::from(([127, 0, 0, 1], p.bridge.osc_port));
    let before = p.bridge.process.output().len();
    for i in 0..5000 {
        let packet: &[u8] = if i % 2 == 0 {
            b"/flood/x\0\0\0\0,f\0\0\0\0\0\0"
        } else {
            b"\x00garbage"
        };
        socket.send_to(packet, bridge).expect("send");
    }
    require_tool("oscsend");
    kubeknobs_tests::harness::osc_send(p.bridge.osc_port, "/1/fader1", "f", "0.5");
    p.gateway.process.wait_for(&["applied", "value=10"]);
    let lines = p.bridge.process.output().len() - before;
    assert!(lines < 20, "{lines} bridge log lines for 5,000 datagrams");
}

/// Waits until one of `connections` is closed by the other end; returns its index.
fn one_closed(connections: &[std::net::TcpStream]) -> usize {
    use std::io::Read as _;
    let started = Instant::now();
    loop {
        for (i, mut c) in connections.iter().enumerate() {
            c.set_nonblocking(true).expect("nonblocking");
            let read = c.read(&mut [0u8; 16]);
            c.set_nonblocking(false).expect("blocking");
            match read {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Ok(0) | Err(_) => return i,
                Ok(n) => panic!("the bridge sent {n} bytes to a silent client"),
            }
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no connection gave way to the 33rd"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 32 idle or half-open OSC/TCP connections held every slot forever, so real TCP clients were
/// reset. A new client now takes the slot of one that never spoke, and the silent ones are
/// closed after the first-packet timeout.
#[test]
fn idle_osc_tcp_connections_do_not_lock_out_real_clients() {
    require_tool("oscsend");
    let p = connected(SANDBOX, ("default", "web"));
    let tcp = p.bridge.osc_tcp.expect("OSC over TCP");
    // 33 silent connections: the 33rd takes the slot of one of the first 32, so once one of them
    // is closed every slot is known to be held by a silent connection.
    let mut idle: Vec<std::net::TcpStream> = (0..33)
        .map(|_| std::net::TcpStream::connect(tcp).expect("connect"))
        .collect();
    let gave_way = one_closed(&idle);
    idle.remove(gave_way);
    let url = format!("osc.tcp://127.0.0.1:{}", tcp.port());
    let status = Command::new("oscsend")
        .args([url.as_str(), "/1/fader1", "f", "0.5"])
        .status()
        .expect("run oscsend");
    assert!(status.success());
    p.gateway.process.wait_for(&["applied", "value=10"]);
    // And the silent ones are gone within the first-packet timeout (10 s).
    for mut s in idle {
        use std::io::Read as _;
        s.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut buf = [0u8; 16];
        let n = s.read(&mut buf);
        assert!(
            matches!(n, Ok(0) | Err(_)),
            "an idle connection was kept: {n:?}"
        );
    }
}
