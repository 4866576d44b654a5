//! Raw MIDI byte streams from a device file: a UART (a Pi's `/dev/ttyAMA0` at 31250 baud), a
//! USB-serial adapter, or an ALSA raw MIDI device (`/dev/snd/midiC1D0`).
//!
//! One reader thread per device: it opens the file, makes a terminal raw and sets its baud rate
//! (when `baud` is given; 31250 is set with Linux's arbitrary-speed `BOTHER`), and `try_send`s
//! what it reads into the engine's channel. A device that is missing or fails is retried every
//! rescan interval (USB adapters come and go). With `feedback = true` a writer thread writes
//! feedback addressed to this device to the same open file (a byte stream: each message whole,
//! in order).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kubeknobs_runtime::telemetry;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::SerialConfig;
use super::{Error, Event, Input, Out};

/// Starts the reader (and writer) threads for one device; returns where feedback bytes go.
pub fn spawn(
    config: SerialConfig,
    retry: Duration,
    tx: mpsc::Sender<Event>,
) -> std::sync::mpsc::Sender<Out> {
    let (out_tx, out_rx) = std::sync::mpsc::channel::<Out>();
    let open: Arc<Mutex<Option<File>>> = Arc::default();
    if config.feedback {
        let open = open.clone();
        let device = config.device.display().to_string();
        let spawned = std::thread::Builder::new()
            .name("midi-serial-out".into())
            .spawn(move || {
                for out in out_rx {
                    if *out.output != *device {
                        continue;
                    }
                    let bytes: Vec<u8> = out.messages.iter().flat_map(|m| m.to_bytes()).collect();
                    let mut slot = open.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(file) = slot.as_mut()
                        && let Err(e) = file.write_all(&bytes)
                    {
                        warn!(%device, error = %e, "MIDI feedback not written");
                    }
                }
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start a serial writer thread; no serial feedback");
        }
    }
    let spawned = std::thread::Builder::new()
        .name("midi-serial-in".into())
        .spawn(move || read_forever(&config, retry, &tx, &open));
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start a serial reader thread; serial MIDI disabled");
    }
    out_tx
}

fn read_forever(
    config: &SerialConfig,
    retry: Duration,
    tx: &mpsc::Sender<Event>,
    open: &Mutex<Option<File>>,
) {
    let device = config.device.display().to_string();
    let source: Arc<str> = Arc::from(device.as_str());
    let mut warned = false;
    loop {
        if tx.is_closed() {
            return;
        }
        match open_device(config) {
            Ok(mut file) => {
                warned = false;
                info!(%device, "serial MIDI device open");
                if config.feedback
                    && let Ok(writer) = file.try_clone()
                {
                    *open.lock().unwrap_or_else(PoisonError::into_inner) = Some(writer);
                    // Waits for room: a device the engine does not know of would get no feedback.
                    let _ = tx.blocking_send(Event::OutputConnected(source.clone()));
                }
                let mut buf = [0u8; 256];
                loop {
                    match file.read(&mut buf) {
                        Ok(0) => {
                            warn!(%device, "serial MIDI device closed; reopening");
                            break;
                        }
                        Ok(n) => {
                            let input = Event::Input(Input {
                                source: source.clone(),
                                bytes: buf[..n].to_vec(),
                            });
                            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(input) {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let e = Error::Serial {
                                device: device.clone(),
                                source: e,
                            };
                            warn!(error = %telemetry::chain(&e), "reading failed; reopening");
                            break;
                        }
                    }
                }
                if open
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take()
                    .is_some()
                {
                    let _ = tx.blocking_send(Event::OutputGone(source.clone()));
                }
            }
            Err(e) => {
                if !warned {
                    warn!(error = %telemetry::chain(&e), "serial MIDI device unavailable; retrying");
                    warned = true;
                }
            }
        }
        std::thread::sleep(retry);
    }
}

/// Opens the device; a terminal is made raw and given the configured baud rate.
fn open_device(config: &SerialConfig) -> Result<File, Error> {
    let err = |source| Error::Serial {
        device: config.device.display().to_string(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(config.feedback)
        .open(&config.device)
        .map_err(err)?;
    if rustix::termios::isatty(&file) {
        let mut t = rustix::termios::tcgetattr(&file).map_err(|e| err(e.into()))?;
        t.make_raw();
        if let Some(baud) = config.baud {
            t.set_speed(baud).map_err(|e| err(e.into()))?;
        }
        rustix::termios::tcsetattr(&file, rustix::termios::OptionalActions::Now, &t)
            .map_err(|e| err(e.into()))?;
    }
    Ok(file)
}
