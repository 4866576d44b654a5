//! `check`, `run` and reload judge a gateway config the same way, through the real binary: for
//! each bad config of a table, `check` exits 2 naming the file, line and field; `run` refuses to
//! start with the very same message and never listens; and a running gateway given the file on
//! reload says the same, keeps its config and still serves with it.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubeknobs_proto::v1::{self, knobs_client::KnobsClient, server_message::Msg};
use kubeknobs_tests::harness::{Process, address_after, binary, gen_certs, token_hash};
use tokio_stream::StreamExt as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const TOKEN: &str = "agreement-token";

/// A valid config; `tls` adds the server certificate (without it, only `--insecure` serves).
/// The target's `max = 20` is what a bad file must not change.
fn base(tls: bool) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{}\n[cluster]\nbackend = \"sandbox\"\n\n\
         [[operators]]\nname = \"alice\"\ntoken_sha256 = \"{}\"\n\n\
         [targets.web]\nkind = \"deployment-replicas\"\nnamespace = \"default\"\nname = \"web\"\nmin = 0\nmax = 20\n",
        if tls {
            "tls_cert = \"certs/server.pem\"\ntls_key = \"certs/server.key\"\n"
        } else {
            ""
        },
        token_hash(TOKEN)
    )
}

/// One bad config: what it is, the running gateway's flags, how it differs from [`base`], and
/// the field its error must name.
struct Row {
    what: &'static str,
    insecure: bool,
    edit: fn(String) -> String,
    field: &'static str,
}

fn without(text: String, part: &str) -> String {
    assert!(text.contains(part), "{part:?} not in the base");
    text.replace(part, "")
}

/// `text` without the table that starts with `header` (up to the next blank line or the end).
fn without_table(text: String, header: &str) -> String {
    let start = text.find(header).expect("the table is in the base");
    let end = text[start..]
        .find("\n\n")
        .map_or(text.len(), |n| start + n + 1);
    format!("{}{}", &text[..start], &text[end..])
}

fn rows() -> Vec<Row> {
    let row = |what, insecure, edit, field| Row {
        what,
        insecure,
        edit,
        field,
    };
    vec![
        row(
            "no operators",
            false,
            |t| without_table(t, "[[operators]]"),
            "operators",
        ),
        row(
            "an empty catalog",
            false,
            |t| without_table(t, "[targets.web]"),
            "targets",
        ),
        row(
            "TokenReview without a cluster",
            false,
            |t| t + "[auth]\ntoken_review = true\n",
            "auth.token_review",
        ),
        row(
            "no TLS without --insecure",
            false,
            |t| {
                without(
                    t,
                    "tls_cert = \"certs/server.pem\"\ntls_key = \"certs/server.key\"\n",
                )
            },
            "server.tls_cert",
        ),
        row(
            "a client CA with no certificate in it",
            false,
            |t| t + "[auth]\nclient_ca = \"garbage.pem\"\n",
            "auth.client_ca",
        ),
        row(
            "any identity without TokenReview",
            false,
            |t| t + "[auth]\ntoken_review_any_identity = true\n",
            "auth.token_review_any_identity",
        ),
        row(
            "leader election on the sandbox",
            false,
            |t| t + "[cluster.leader_election]\n",
            "cluster.leader_election",
        ),
        row(
            "an unknown kind",
            false,
            |t| t.replace("deployment-replicas", "daemonset-replicas"),
            "targets.web.kind",
        ),
        row(
            "max below min",
            false,
            |t| t.replace("min = 0\nmax = 7", "min = 5\nmax = 3"),
            "targets.web.max",
        ),
        row(
            "an unknown backend",
            false,
            |t| t.replace("\"sandbox\"", "\"minikube\""),
            "cluster.backend",
        ),
        row(
            "an unknown ownership rule",
            false,
            |t| {
                t.replace(
                    "backend = \"sandbox\"",
                    "backend = \"sandbox\"\nwhen_gitops = \"sometimes\"",
                )
            },
            "cluster.when_gitops",
        ),
        row(
            "a policy naming no target",
            false,
            |t| t + "[[policy]]\noperators = [\"alice\"]\ntargets = [\"nope\"]\n",
            "policy[0].targets",
        ),
        row(
            "a missing tokens file",
            false,
            |t| t + "[auth]\ntokens_file = \"missing.toml\"\n",
            "auth.tokens_file",
        ),
        row(
            "--insecure with TLS files",
            true,
            |t| {
                t.replace(
                    "[cluster]",
                    "tls_cert = \"certs/server.pem\"\ntls_key = \"certs/server.key\"\n[cluster]",
                )
            },
            "server.tls_cert",
        ),
        row(
            "client certificates with --insecure",
            true,
            |t| t + "[auth]\nclient_ca = \"certs/ca.pem\"\n",
            "auth.client_ca",
        ),
        row(
            "--insecure on an address others reach",
            true,
            |t| t.replace("127.0.0.1:0", "0.0.0.0:0"),
            "server.listen",
        ),
    ]
}

/// The bad file of `row`: [`base`] with `max = 7`, so a reload that took it would show.
fn bad_config(row: &Row) -> String {
    (row.edit)(base(!row.insecure).replace("max = 20", "max = 7"))
}

/// Writes `text` to `path` at once (a rename), so the gateway's file watch never reads half.
fn write_atomically(path: &Path, text: &str) {
    let next = path.with_extension("next");
    std::fs::write(&next, text).expect("write config");
    std::fs::rename(&next, path).expect("rename config");
}

fn flags(insecure: bool) -> Vec<&'static str> {
    if insecure { vec!["--insecure"] } else { vec![] }
}

/// `check`'s one error line for `path`, if it fails as a bad config should.
fn check_refuses(path: &Path, row: &Row) -> Result<String, String> {
    let out = Command::new(binary("kubeknobs-gateway"))
        .arg("check")
        .args(flags(row.insecure))
        .arg("--config")
        .arg(path)
        .output()
        .expect("run check");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.code() != Some(2) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        return Err(format!("check accepted it: {stdout}{stderr}"));
    }
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .ok_or_else(|| format!("check printed no error line: {stderr}"))?;
    let located = format!("error: {}:", path.display());
    if !(error.starts_with(&located) && error.contains(&format!(": {}: ", row.field))) {
        return Err(format!(
            "check's error must name the file, line and {}: {error}",
            row.field
        ));
    }
    Ok(error.to_owned())
}

/// `run` on `path` exits 2 with exactly `error`, never listening.
fn run_refuses(path: &Path, row: &Row, error: &str) -> Result<(), String> {
    let mut command = Command::new(binary("kubeknobs-gateway"));
    command
        .arg("run")
        .args(flags(row.insecure))
        .arg("--config")
        .arg(path);
    let run = Process::spawn("gateway run", command);
    let code = run.wait_exit();
    let output = run.output();
    if output.iter().any(|l| l.contains("listening")) {
        return Err(format!("run listened: {output:?}"));
    }
    if code != Some(2) || !output.iter().any(|l| l == error) {
        return Err(format!(
            "run must exit 2 saying {error:?}; exit {code:?}, said {output:?}"
        ));
    }
    Ok(())
}

/// A gateway running [`base`] with `insecure`'s flags in `dir`.
fn running(dir: &Path, insecure: bool) -> (Process, std::net::SocketAddr) {
    let path = dir.join("gateway.toml");
    write_atomically(&path, &base(!insecure));
    let mut command = Command::new(binary("kubeknobs-gateway"));
    command
        .arg("run")
        .args(flags(insecure))
        .arg("--config")
        .arg(&path);
    let gateway = Process::spawn("gateway", command);
    let line = gateway.wait_for(&["gRPC listening on"]);
    (gateway, address_after(&line, "gRPC listening on"))
}

/// The catalog's `(name, max)` a session as `alice` is welcomed with.
fn welcomed(addr: std::net::SocketAddr, ca: Option<&Path>) -> Vec<(String, f64)> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let channel = match ca {
            Some(ca) => {
                let pem = std::fs::read(ca).expect("read CA");
                let tls = ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(pem))
                    .domain_name("localhost");
                Channel::from_shared(format!("https://127.0.0.1:{}", addr.port()))
                    .expect("uri")
                    .tls_config(tls)
                    .expect("tls")
            }
            None => Channel::from_shared(format!("http://{addr}")).expect("uri"),
        };
        let channel = channel.connect().await.expect("connect");
        let hello = v1::ClientMessage {
            msg: Some(v1::client_message::Msg::Hello(v1::Hello {
                bridge_id: "agreement".into(),
                protocol_version: v1::PROTOCOL_VERSION,
            })),
        };
        let mut request = tonic::Request::new(
            tokio_stream::iter([hello]).chain(tokio_stream::pending::<v1::ClientMessage>()),
        );
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {TOKEN}").parse().expect("ascii"),
        );
        let mut stream = KnobsClient::new(channel)
            .session(request)
            .await
            .expect("session")
            .into_inner();
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
            .await
            .expect("a message in time")
            .expect("stream ok")
            .and_then(|m| m.msg);
        let Some(Msg::Welcome(welcome)) = first else {
            panic!("Welcome first, got {first:?}")
        };
        welcome
            .targets
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    t.bounds.as_ref().map_or(f64::NAN, |b| b.max),
                )
            })
            .collect()
    })
}

#[test]
fn check_run_and_reload_refuse_the_same_bad_configs_with_the_same_message() {
    let rows = rows();
    assert!(rows.len() >= 10);
    let mut failures = Vec::new();
    for insecure in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        gen_certs(dir.path());
        std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").expect("write");
        let (gateway, addr) = running(dir.path(), insecure);
        let ca: Option<PathBuf> = (!insecure).then(|| dir.path().join("certs/ca.pem"));
        let live = dir.path().join("gateway.toml");
        for (n, row) in rows.iter().filter(|r| r.insecure == insecure).enumerate() {
            // The running gateway's file watch reloads it; `check` and `run` read the same file.
            write_atomically(&live, &bad_config(row));
            let reload = gateway.wait_for_nth(&["reloaded", "cause=file changed"], n + 1);
            let agreed = check_refuses(&live, row).and_then(|error| {
                run_refuses(&live, row, &error)?;
                let message = error.trim_start_matches("error: ");
                if !(reload.contains("config not reloaded") && reload.contains(message)) {
                    return Err(format!("reload must refuse saying {message:?}: {reload}"));
                }
                Ok(())
            });
            if let Err(why) = agreed {
                failures.push(format!("{}: {why}", row.what));
            }
        }
        assert!(gateway.is_running());
        assert_eq!(
            welcomed(addr, ca.as_deref()),
            vec![("web".to_owned(), 20.0)],
            "the running config stays in force"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
