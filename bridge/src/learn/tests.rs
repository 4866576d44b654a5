use super::*;

fn learn(bytes: &[&[u8]]) -> Vec<String> {
    let mut l = Learner::default();
    let src: Arc<str> = Arc::from("nano");
    let t0 = Instant::now();
    for (i, b) in bytes.iter().enumerate() {
        l.feed(&src, b, t0 + Duration::from_millis(10 * i as u64));
    }
    assert!(l.flush(t0, false).is_empty(), "still moving");
    l.flush(t0 + LONGEST, false)
}

#[test]
fn one_block_per_control_moved() {
    let blocks = learn(&[
        &[0xB0, 7, 60],
        &[0xB0, 7, 61],
        &[0xB0, 7, 64],
        &[0x91, 36, 100],
        &[0x81, 36, 0],
    ]);
    assert_eq!(
        blocks,
        [
            "[[midi.mappings]]  # from \"nano\", values 60..64\ncontrol = \"cc\"\nnumber = 7\nchannel = 1\ntarget = \"TARGET\"\n",
            "[[midi.mappings]]  # from \"nano\"\ncontrol = \"note\"\nnumber = 36\nchannel = 2\nmode = \"button\"  # or \"toggle\": each press flips the target\ntarget = \"TARGET\"\n",
        ]
    );
}

#[test]
fn recognises_cc14_pairs_nrpn_and_cc_buttons() {
    let blocks = learn(&[
        &[0xB0, 1, 64],
        &[0xB0, 33, 5],
        &[0xB0, 99, 2],
        &[0xB0, 98, 44],
        &[0xB0, 6, 100],
        &[0xB0, 38, 3],
        &[0xB0, 48, 127],
        &[0xB0, 48, 0],
    ]);
    let joined = blocks.join("\n");
    assert!(
        joined.contains("control = \"nrpn\"\nnumber = 300\n"),
        "{joined}"
    );
    assert!(
        joined.contains("control = \"cc14\"\nnumber = 1\n"),
        "{joined}"
    );
    assert!(
        joined.contains("control = \"cc\"\nnumber = 48\nchannel = 1\nmode = \"button\""),
        "{joined}"
    );
    assert_eq!(blocks.len(), 3, "no block for the halves: {joined}");
}

#[test]
fn blocks_are_a_valid_config_and_repeat_moves_print_nothing() {
    let mut l = Learner::default();
    let src: Arc<str> = Arc::from("nano");
    let t0 = Instant::now();
    l.feed(
        &src,
        &[
            0xB0, 7, 10, 0xB0, 7, 11, 0xB0, 1, 3, 0xB0, 33, 4, 0x90, 36, 1,
        ],
        t0,
    );
    l.feed(
        &src,
        &[0xB0, 99, 2, 0xB0, 98, 44, 0xB0, 6, 100, 0xB0, 48, 127],
        t0,
    );
    let mut blocks = l.flush(t0 + QUIET, false);
    l.feed(&src, &[0xB0, 7, 12], t0 + QUIET);
    assert!(l.flush(t0 + QUIET * 3, false).is_empty(), "printed once");
    let from: SocketAddr = "127.0.0.1:9000".parse().expect("addr");
    blocks.extend(l.osc("/1/fader1", &[OscType::Float(0.5)], from));
    assert!(l.osc("/1/fader1", &[], from).is_none(), "printed once");
    // Pasted together, with targets, they are a config the bridge accepts.
    let text = blocks.join("\n").replace("TARGET", "web");
    let local = crate::config::Local::parse(&text, std::path::Path::new("learned.toml"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(local.midi.bindings.len(), 5, "{text}");
    assert_eq!(local.osc.mappings.len(), 1);
}
