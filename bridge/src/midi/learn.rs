//! `kubeknobs-bridge learn`: prints each incoming MIDI and OSC event as the mapping line that
//! would map it, so a config can be built by moving controls. Each line is a TOML inline table
//! for `mappings = [ … ]` under `[midi]` (lines with `control`) or `[osc]` (lines with `address`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use rosc::OscType;

use super::control::{Control, ControlEvent, Decoder, Raw};
use super::parser::Parser;

/// The `[[midi.mappings]]` line for a control event, with its value as a comment.
pub fn midi_line(event: &ControlEvent, source: &str) -> Option<String> {
    let mode = match event.control {
        // 14-bit pairs are shown as their 7-bit halves; a user who sees cc N and cc N+32 move
        // together writes `cc14`.
        Control::Cc14(_) => return None,
        Control::Note(_) => ", mode = \"button\"",
        _ => "",
    };
    let value = match event.raw {
        Raw::Seven(v) => v.to_string(),
        Raw::Fourteen(v) => v.to_string(),
        Raw::Note(on) => if on { "down" } else { "up" }.to_owned(),
    };
    Some(format!(
        "{{ {}, channel = {}{mode}, target = \"TARGET\" }},  # midi: {value} from {source:?}",
        event.control,
        event.channel + 1
    ))
}

/// The `[[osc.mappings]]` line for an OSC message, with its arguments as a comment.
pub fn osc_line(address: &str, args: &[OscType], from: SocketAddr) -> String {
    format!("{{ address = \"{address}\", target = \"TARGET\" }},  # osc: {args:?} from {from}")
}

/// Per-source parsing for `learn`.
#[derive(Default)]
pub struct Learner {
    streams: HashMap<Arc<str>, (Parser, Decoder)>,
}

impl Learner {
    /// The lines for some bytes from `source`.
    pub fn lines(&mut self, source: &Arc<str>, bytes: &[u8]) -> Vec<String> {
        let (parser, decoder) = self.streams.entry(source.clone()).or_default();
        let mut out = Vec::new();
        for message in parser.feed_all(bytes) {
            for event in decoder.decode(&message) {
                out.extend(midi_line(&event, source));
            }
        }
        out
    }
}

/// Runs `learn` until `shutdown`: opens the MIDI inputs matching `config.inputs` (every input
/// when there is none), the serial devices, and an OSC socket on `osc_listen`, and prints a
/// line per event on stdout.
pub async fn run(
    config: crate::config::MidiConfig,
    osc_listen: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::osc::Error> {
    let socket = crate::osc::bind(osc_listen).await?;
    let local = socket.local_addr().map_err(crate::osc::Error::LocalAddr)?;
    let inputs = if config.inputs.is_empty() {
        vec![String::new()]
    } else {
        config.inputs.clone()
    };
    eprintln!(
        "learn: move a control; MIDI inputs matching {inputs:?}, serial {:?}, OSC on {local} (Ctrl-C ends)",
        config
            .serial
            .iter()
            .map(|s| s.device.display().to_string())
            .collect::<Vec<_>>()
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(super::INPUT_QUEUE);
    let (_out_tx, out_rx) = std::sync::mpsc::channel();
    super::ports::spawn(super::ports::Watch {
        inputs,
        outputs: Vec::new(),
        rescan: config.rescan,
        tx: tx.clone(),
        out: out_rx,
    });
    let mut _serial = Vec::new();
    for s in &config.serial {
        _serial.push(super::serial::spawn(s.clone(), config.rescan, tx.clone()));
    }
    let mut learner = Learner::default();
    let mut buf = vec![0u8; crate::osc::MAX_DATAGRAM];
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            Some(event) = rx.recv() => {
                if let super::Event::Input(input) = event {
                    for line in learner.lines(&input.source, &input.bytes) {
                        if !say(&line)? {
                            return Ok(());
                        }
                    }
                }
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => match crate::osc::decode(&buf[..len]) {
                    Ok(messages) => {
                        for m in messages {
                            if !say(&osc_line(&m.addr, &m.args, from))? {
                                return Ok(());
                            }
                        }
                    }
                    Err(e) => eprintln!("learn: malformed OSC from {from}: {e}"),
                },
                Err(e) => eprintln!("learn: receiving OSC failed: {e}"),
            },
        }
    }
}

/// Prints one line; false when the reader went away (`learn | head`), which ends learning
/// quietly. Any other failure (a full disk) is an error.
fn say(line: &str) -> Result<bool, crate::osc::Error> {
    use std::io::Write as _;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(crate::osc::Error::Stdout(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_mapping_lines() {
        let mut l = Learner::default();
        let src: Arc<str> = Arc::from("nano");
        let lines = l.lines(&src, &[0xB0, 7, 64, 0x91, 36, 100]);
        assert_eq!(
            lines,
            vec![
                "{ control = \"cc\", number = 7, channel = 1, target = \"TARGET\" },  # midi: 64 from \"nano\"",
                "{ control = \"note\", number = 36, channel = 2, mode = \"button\", target = \"TARGET\" },  # midi: down from \"nano\"",
            ]
        );
    }
}
