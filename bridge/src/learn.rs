//! `kubeknobs-bridge learn`: prints, for each control moved, one `[[midi.mappings]]` (or
//! `[[osc.mappings]]`) block that maps it, ready to paste into a config and give a target.
//!
//! A move is gathered into a *gesture* per source and channel until the control has been quiet
//! for [`QUIET`] (or the gesture is [`LONGEST`] old), then classified: CCs 99/98 with data entry
//! are one `nrpn`; CC `N` with CC `N+32` is one `cc14`; a CC that only ever sent 0 and 127 is a
//! button (`mode = "button"`); a note is a button. Each control is printed once per run, however
//! often it moves.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rosc::OscType;

use crate::midi::control::{Control, Decoder};
use crate::midi::message::Message;
use crate::midi::parser::Parser;
use crate::midi::{self, MidiConfig, ports, serial};
use crate::osc;

/// What ends `learn` early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OSC socket could not be bound.
    #[error(transparent)]
    Osc(#[from] osc::Error),
    /// What it saw could not be printed (a full disk; a closed pipe just ends it).
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),
}

/// How long a control must be still before its block is printed.
pub const QUIET: Duration = Duration::from_millis(300);
/// A gesture this old is printed even while the control keeps moving.
pub const LONGEST: Duration = Duration::from_secs(1);
/// Values remembered per CC in a gesture (enough to tell a button from a fader).
const VALUES: usize = 64;

/// What one source sent on one channel in one gesture.
#[derive(Debug)]
struct Gesture {
    started: Instant,
    last: Instant,
    /// CC number → distinct values seen.
    ccs: BTreeMap<u8, BTreeSet<u8>>,
    notes: BTreeSet<u8>,
    nrpn: BTreeSet<u16>,
    pitchbend: bool,
    program: bool,
}

/// Per-source parsing and gestures for `learn`.
#[derive(Default)]
pub struct Learner {
    streams: HashMap<Arc<str>, (Parser, Decoder)>,
    gestures: BTreeMap<(Arc<str>, u8), Gesture>,
    printed: HashSet<(Arc<str>, u8, Control)>,
    osc_printed: HashSet<String>,
}

impl Learner {
    /// Takes some bytes from `source`, received at `now`.
    pub fn feed(&mut self, source: &Arc<str>, bytes: &[u8], now: Instant) {
        let (parser, decoder) = self.streams.entry(source.clone()).or_default();
        for message in parser.feed_all(bytes) {
            let events = decoder.decode(&message);
            for event in events {
                let g = self
                    .gestures
                    .entry((source.clone(), event.channel))
                    .or_insert_with(|| Gesture {
                        started: now,
                        last: now,
                        ccs: BTreeMap::new(),
                        notes: BTreeSet::new(),
                        nrpn: BTreeSet::new(),
                        pitchbend: false,
                        program: false,
                    });
                g.last = now;
                match (event.control, &message) {
                    (Control::Cc(n), Message::ControlChange { value, .. }) => {
                        let values = g.ccs.entry(n).or_default();
                        if values.len() < VALUES {
                            values.insert(*value);
                        }
                    }
                    (Control::Note(n), _) => {
                        g.notes.insert(n);
                    }
                    (Control::Nrpn(n), _) => {
                        g.nrpn.insert(n);
                    }
                    (Control::PitchBend, _) => g.pitchbend = true,
                    (Control::Program, _) => g.program = true,
                    _ => {}
                }
            }
        }
    }

    /// The blocks of every gesture that is over at `now` (every gesture with `all`), each
    /// control once per run.
    pub fn flush(&mut self, now: Instant, all: bool) -> Vec<String> {
        let done: Vec<(Arc<str>, u8)> = self
            .gestures
            .iter()
            .filter(|(_, g)| {
                all || now.saturating_duration_since(g.last) >= QUIET
                    || now.saturating_duration_since(g.started) >= LONGEST
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in done {
            let Some(g) = self.gestures.remove(&key) else {
                continue;
            };
            let (source, channel) = key;
            for (control, comment) in classify(g) {
                if self.printed.insert((source.clone(), channel, control)) {
                    out.push(block(control, channel, &source, &comment));
                }
            }
        }
        out
    }

    /// The block for an OSC message, the first time its address is seen.
    pub fn osc(&mut self, address: &str, args: &[OscType], from: SocketAddr) -> Option<String> {
        if !self.osc_printed.insert(address.to_owned()) {
            return None;
        }
        Some(format!(
            "[[osc.mappings]]  # {args:?} from {from}\naddress = \"{address}\"\ntarget = \"TARGET\"\n"
        ))
    }
}

/// The controls a gesture moved, each with what to say about it.
fn classify(mut g: Gesture) -> Vec<(Control, String)> {
    let mut out = Vec::new();
    if !g.nrpn.is_empty() {
        for cc in [99, 98, 6, 38, 100, 101] {
            g.ccs.remove(&cc);
        }
        for n in &g.nrpn {
            out.push((Control::Nrpn(*n), String::new()));
        }
    }
    for n in 0..32u8 {
        if g.ccs.contains_key(&n) && g.ccs.contains_key(&(n + 32)) {
            g.ccs.remove(&n);
            g.ccs.remove(&(n + 32));
            out.push((Control::Cc14(n), String::new()));
        }
    }
    for (n, values) in &g.ccs {
        let seen = match (values.first(), values.last()) {
            (Some(lo), Some(hi)) if lo == hi => format!("value {lo}"),
            (Some(lo), Some(hi)) => format!("values {lo}..{hi}"),
            _ => String::new(),
        };
        if values.iter().all(|v| *v == 0 || *v == 127) {
            out.push((Control::Cc(*n), format!("button? {seen}")));
        } else {
            out.push((Control::Cc(*n), seen));
        }
    }
    for n in &g.notes {
        out.push((Control::Note(*n), String::new()));
    }
    if g.pitchbend {
        out.push((Control::PitchBend, String::new()));
    }
    if g.program {
        out.push((Control::Program, String::new()));
    }
    out
}

/// One `[[midi.mappings]]` block.
fn block(control: Control, channel: u8, source: &str, comment: &str) -> String {
    let mut s = format!("[[midi.mappings]]  # from {source:?}");
    if let Some(seen) = comment.strip_prefix("button? ") {
        s.push_str(&format!(", {seen}"));
    } else if !comment.is_empty() {
        s.push_str(&format!(", {comment}"));
    }
    s.push('\n');
    s.push_str(&format!("control = \"{}\"\n", control.kind()));
    if let Some(n) = control.number() {
        s.push_str(&format!("number = {n}\n"));
    }
    s.push_str(&format!("channel = {}\n", channel + 1));
    let button = matches!(control, Control::Note(_)) || comment.starts_with("button?");
    if button {
        s.push_str("mode = \"button\"  # or \"toggle\": each press flips the target\n");
    }
    s.push_str("target = \"TARGET\"\n");
    s
}

/// Runs `learn` until `shutdown`: opens the MIDI inputs matching `config.inputs` (every input
/// when there is none), the serial devices, and an OSC socket on `osc_listen`, and prints a
/// block per control moved on stdout.
pub async fn run(
    config: MidiConfig,
    osc_listen: SocketAddr,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let socket = osc::bind(osc_listen).await?;
    let local = socket.local_addr().map_err(osc::Error::LocalAddr)?;
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
    let (tx, mut rx) = tokio::sync::mpsc::channel(midi::INPUT_QUEUE);
    let (_out_tx, out_rx) = std::sync::mpsc::channel();
    ports::spawn(ports::Watch {
        inputs,
        outputs: Vec::new(),
        rescan: config.rescan,
        tx: tx.clone(),
        out: out_rx,
    });
    let mut _serial = Vec::new();
    for s in &config.serial {
        _serial.push(serial::spawn(s.clone(), config.rescan, tx.clone()));
    }
    let mut learner = Learner::default();
    let mut buf = vec![0u8; osc::MAX_DATAGRAM];
    let mut tick = tokio::time::interval(QUIET / 3);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => {
                for block in learner.flush(Instant::now(), true) {
                    if !say(&block)? {
                        break;
                    }
                }
                return Ok(());
            }
            _ = tick.tick() => {
                for block in learner.flush(Instant::now(), false) {
                    if !say(&block)? {
                        return Ok(());
                    }
                }
            }
            Some(event) = rx.recv() => {
                if let midi::Event::Input(input) = event {
                    learner.feed(&input.source, &input.bytes, Instant::now());
                }
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((len, from)) => match osc::decode(&buf[..len]) {
                    Ok(messages) => {
                        for m in messages {
                            if let Some(block) = learner.osc(&m.addr, &m.args, from)
                                && !say(&block)?
                            {
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
fn say(line: &str) -> Result<bool, Error> {
    use std::io::Write as _;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Error::Stdout(e)),
    }
}

#[cfg(test)]
mod tests;
