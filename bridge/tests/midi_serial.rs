//! Raw serial MIDI through a pseudo-terminal standing in for a UART: the test writes bytes with
//! running status and interleaved realtime bytes to the master side, the bridge reads the slave
//! side (made raw, 31250 baud requested) and a target moves; feedback comes back on the same line.

mod support;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use kubeknobs_bridge::config::SerialConfig;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use support::midi::{cc, expect_bytes, midi, start};

/// Opens a pty pair; returns the master and the slave's path. The slave is opened and made raw
/// here too (and kept open), so nothing written before the bridge opens it is mangled or echoed.
fn pty() -> (std::fs::File, PathBuf, std::fs::File) {
    let master: OwnedFd = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let path = PathBuf::from(name.to_str().expect("utf-8 pty name"));
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open slave");
    let mut t = rustix::termios::tcgetattr(&slave).expect("tcgetattr");
    t.make_raw();
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &t)
        .expect("tcsetattr");
    (std::fs::File::from(master), path, slave)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_uart_byte_stream_drives_a_target_and_gets_feedback() {
    let (mut master, path, _slave) = pty();
    let mut config = midi(&[], &[], vec![cc(7)]);
    config.serial.push(SerialConfig {
        device: path,
        baud: Some(31250),
        feedback: true,
    });
    let mut bridge = start(config).await;

    // Feedback written to the line arrives at the master side.
    let mut reader = master.try_clone().expect("clone master");
    let (tx, shown) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    // The Welcome's state: desired 3 of 0..20 → CC 7 = 19.
    expect_bytes(&shown, &[0xB0, 7, 19]);

    // Garbage, a clock byte inside the message, then running status for the second value.
    master
        .write_all(&[0x05, 0x06, 0xB0, 7, 0xF8, 127])
        .expect("write");
    let event = tokio::time::timeout(Duration::from_secs(10), bridge.controls.recv())
        .await
        .expect("event in time")
        .expect("events");
    assert_eq!(event.value, 20.0);
    master.write_all(&[0xFE, 7, 0xF8, 0]).expect("write");
    let event = tokio::time::timeout(Duration::from_secs(10), bridge.controls.recv())
        .await
        .expect("event in time")
        .expect("events");
    assert_eq!(event.value, 0.0, "running status carried the second value");

    bridge.push_state(10.0).await;
    expect_bytes(&shown, &[0xB0, 7, 64]);
    bridge.stop().await;
}
