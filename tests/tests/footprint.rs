//! The bridge writes nothing to disk (on a Pi it runs from an SD card): a real pipeline carries
//! fader moves, touches and feedback, and the bridge's storage-write counter stays at zero. Its
//! logs go to a pipe here, as they go to the journal under systemd.

use std::io::Write;

use kubeknobs_tests::footprint::{calibrate_write_bytes, write_bytes};
use kubeknobs_tests::harness::osc_send;
use kubeknobs_tests::pipeline::connected;

const SANDBOX: &str = "backend = \"sandbox\"";
const WEB: (&str, &str) = ("default", "web");

#[test]
fn the_bridge_writes_nothing_to_disk_while_it_works() {
    let p = connected(SANDBOX, WEB);
    // A zero means something only if a write would have shown: a child writing 64 KiB next to
    // the bridge's config must be counted.
    let counted = calibrate_write_bytes(p.dir.path());
    if counted.is_none_or(|bytes| bytes == 0) {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: this kernel or the file system under {} does not count file writes in \
             /proc/<pid>/io write_bytes ({counted:?} for a 64 KiB write), so disk writes cannot be seen",
            p.dir.path().display()
        );
        return;
    }

    let port = p.bridge.osc_port;
    osc_send(port, "/1/fader1/z", "f", "1");
    for value in ["0.25", "0.5", "0.75"] {
        osc_send(port, "/1/fader1", "f", value);
    }
    osc_send(port, "/1/fader1/z", "f", "0");
    p.gateway.process.wait_for(&["applied", "value=15"]);
    p.phone.wait_for("/1/fader1", "f 0.750000");
    p.phone.wait_for("/1/label1", "\"web 15/15\"");

    let pid = p.bridge.process.pid();
    let written = write_bytes(pid).expect("the calibration read /proc/<pid>/io");
    assert_eq!(
        written, 0,
        "the bridge sent {written} bytes to storage (the 64 KiB calibration write counted {counted:?})"
    );
}
