//! Reachability between homes, with the real `hearth` binary in a simulated internet of
//! network namespaces (see `netsim`): NAT routers that drop unsolicited inbound traffic,
//! public hosts, relays and hole punching.
//!
//! Each test builds its own internet and tears it down (daemons included) even when it
//! fails. They need root and iproute2/iptables; without them they say so loudly and pass,
//! except under `CI=true`, where they fail. Times to connect and to the first message are
//! printed (`cargo test --test reachability -- --nocapture`), never asserted.

mod netsim;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use netsim::{Host, Internet, Nat};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hearth");
const PASSPHRASE: &str = "correct horse battery staple";
/// The simulated internet's range, treated as public by every daemon.
const PUBLIC_RANGE: &str = "203.0.113.0/24";
/// The longest one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest anything may take to happen on the network.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(45);
/// The port every daemon listens on (TCP and QUIC); each has its own namespace.
const PORT: u16 = 4001;

/// What a finished command printed.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "the command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Polls `f` every 250 ms until it returns `Some`, or panics after `timeout`.
fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// One person's device: a data directory and the namespace it runs in.
struct Device<'a> {
    net: &'a Internet,
    host: Host,
    dir: PathBuf,
    name: &'static str,
    daemon: Option<Child>,
    log: PathBuf,
}

impl<'a> Device<'a> {
    /// A new profile for `name` on `host`.
    fn new(net: &'a Internet, tmp: &Path, host: Host, name: &'static str) -> Device<'a> {
        let device = Device {
            net,
            host,
            dir: tmp.join(name),
            log: tmp.join(format!("{name}.log")),
            name,
            daemon: None,
        };
        device.hearth(&["init"]).ok();
        device
    }

    /// Runs `hearth <args>` in the device's namespace (killed after [`COMMAND_TIMEOUT`]).
    fn hearth(&self, args: &[&str]) -> Run {
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let mut child = self
            .net
            .command(&self.host.ns, BIN)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .env_remove("HEARTH_DIR")
            .env_remove("HEARTH_NAME")
            .env_remove("HEARTH_LOG")
            .env("HEARTH_PASSPHRASE", PASSPHRASE)
            .env("HEARTH_TEST_FAST_KDF", "1")
            .stdin(Stdio::null())
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .spawn()
            .expect("the hearth binary starts");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`hearth {}` did not finish in time", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(out.path()).unwrap(),
            stderr: std::fs::read_to_string(err.path()).unwrap(),
        }
    }

    /// Starts `hearth up` on every IPv4 interface, fixed port, no mDNS, with `extra` flags, and
    /// waits until its API answers.
    fn up(&mut self, extra: &[String]) {
        self.up_on("/ip4/0.0.0.0", PUBLIC_RANGE, extra);
    }

    /// Starts `hearth up` listening on `base` (e.g. `/ip6/::`), TCP and QUIC on [`PORT`],
    /// treating `public_range` as public, no mDNS, with `extra` flags; waits until its API
    /// answers.
    fn up_on(&mut self, base: &str, public_range: &str, extra: &[String]) {
        let file = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let tcp = format!("{base}/tcp/{PORT}");
        let quic = format!("{base}/udp/{PORT}/quic-v1");
        let mut args: Vec<&str> = vec![
            "up",
            "--no-mdns",
            "--public-range",
            public_range,
            "--listen",
            &tcp,
            "--listen",
            &quic,
        ];
        args.extend(extra.iter().map(String::as_str));
        let child = self
            .net
            .command(&self.host.ns, BIN)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(&args)
            .env_remove("HEARTH_DIR")
            .env_remove("HEARTH_NAME")
            .env(
                "HEARTH_LOG",
                std::env::var("REACH_LOG").unwrap_or_else(|_| "warn,hearth_node=info".into()),
            )
            .env("HEARTH_PASSPHRASE", PASSPHRASE)
            .env("HEARTH_TEST_FAST_KDF", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the hearth binary starts");
        self.daemon = Some(child);
        eventually(
            &format!("{}'s daemon to answer", self.name),
            NETWORK_TIMEOUT,
            || {
                if let Some(status) = self.daemon.as_mut().unwrap().try_wait().unwrap() {
                    panic!("{}'s daemon exited ({status}):\n{}", self.name, self.log());
                }
                (self.dir.join("daemon.json").exists() && self.hearth(&["status"]).code == 0)
                    .then_some(())
            },
        );
    }

    /// Kills the daemon at once (a crash, or a laptop lid closing).
    fn stop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The API file of a killed daemon stays behind; the next `up` checks it is stale.
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn status(&self) -> Value {
        self.hearth(&["status", "--json"]).ok().json()
    }

    fn peer_id(&self) -> String {
        self.status()["peer_id"].as_str().unwrap().to_owned()
    }

    /// The connections to `peer` now: `(relayed, address)` each.
    fn connections_to(&self, peer: &str) -> Vec<(bool, String)> {
        self.status()["connections"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["peer_id"] == peer)
            .map(|c| {
                (
                    c["relayed"].as_bool().unwrap_or(true),
                    c["address"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    fn has_direct_connection(&self, peer: &str) -> bool {
        self.connections_to(peer)
            .iter()
            .any(|(relayed, _)| !relayed)
    }

    fn is_connected(&self, peer: &str) -> bool {
        !self.connections_to(peer).is_empty()
    }

    fn reachability(&self) -> String {
        self.status()["reachability"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Creates `circle` with this device as facilitator.
    fn create(&self, circle: &str) {
        self.hearth(&["circle", "create", circle, "--as", self.name])
            .ok();
    }

    /// A one-use ticket for `circle`.
    fn invite(&self, circle: &str) -> String {
        let invite = self
            .hearth(&["invite", circle, "--expires", "1h", "--json"])
            .ok()
            .json();
        invite["ticket"].as_str().unwrap().to_owned()
    }

    fn join(&self, ticket: &str) {
        self.hearth(&[
            "join",
            ticket,
            "--accept-guidelines",
            "--as",
            self.name,
            "--catch-up",
            "1s",
        ])
        .ok();
    }

    fn send(&self, circle: &str, text: &str) {
        self.hearth(&["send", circle, text]).ok();
    }

    fn has_message(&self, circle: &str, text: &str) -> bool {
        let run = self.hearth(&["read", circle, "--json"]);
        run.code == 0
            && run
                .json()
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["content"]["body"] == text))
    }

    /// Waits until `text` is in this device's timeline; returns how long it took.
    fn wait_for_message(&self, circle: &str, text: &str) -> Duration {
        let start = Instant::now();
        eventually(
            &format!("\"{text}\" at {}'s", self.name),
            NETWORK_TIMEOUT,
            || self.has_message(circle, text).then_some(()),
        );
        start.elapsed()
    }
}

impl Drop for Device<'_> {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("--- log of {}'s daemon ---\n{}", self.name, self.log());
        }
    }
}

fn relay_flag(addr: String) -> Vec<String> {
    vec!["--relay".to_owned(), addr]
}

/// Scenario "one reachable member", then "reconnect": Ana is public; Ben and Chloe are in
/// two homes behind NATs without UPnP. They join through Ana, reserve a relay slot on her,
/// find each other through her and hole-punch a direct connection; when Ana stops they keep
/// talking; when she comes back everyone is connected again without restarting anything.
/// The scenarios run one at a time: each starts several daemons, and on a shared 2-core
/// machine parallel scenarios starved hole punching of the timing it needs.
static ONE_SCENARIO_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Holds [`ONE_SCENARIO_AT_A_TIME`] (a failed scenario does not block the others).
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_SCENARIO_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn one_reachable_member_relays_then_hole_punching_makes_homes_direct() {
    let _serial = one_at_a_time();
    let Some(mut net) = Internet::new("one_reachable_member") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let ana_host = net.public_host("ana");
    let mut home_b = net.home("homeb", Nat::Cone);
    let mut home_c = net.home("homec", Nat::Cone);
    let ben_host = net.host_in(&mut home_b, "ben");
    let chloe_host = net.host_in(&mut home_c, "chloe");
    let net = net;
    let mut ana = Device::new(&net, tmp.path(), ana_host, "Ana");
    let mut ben = Device::new(&net, tmp.path(), ben_host, "Ben");
    let mut chloe = Device::new(&net, tmp.path(), chloe_host, "Chloe");
    ana.up(&[]);
    ben.up(&[]);
    chloe.up(&[]);
    let circle = "Tuesday circle";
    ana.create(circle);

    let start = Instant::now();
    ben.join(&ana.invite(circle));
    let ben_joined = start.elapsed();
    chloe.join(&ana.invite(circle));
    let (ana_id, ben_id, chloe_id) = (ana.peer_id(), ben.peer_id(), chloe.peer_id());

    // Ana knows she is reachable; Ben and Chloe hold a relay slot on her.
    eventually("Ana to know she is public", NETWORK_TIMEOUT, || {
        (ana.reachability() == "public").then_some(())
    });
    for member in [&ben, &chloe] {
        eventually(
            &format!("{} to be reachable through Ana's relay", member.name),
            NETWORK_TIMEOUT,
            || (member.reachability() == "relayed").then_some(()),
        );
    }
    let relayed_at = start.elapsed();
    // Ben and Chloe hole-punch a direct connection (after a failed round they try again: 5 s,
    // a DCUtR round of up to 30 s, 10 s, another round).
    eventually(
        "a direct Ben↔Chloe connection",
        2 * NETWORK_TIMEOUT,
        || {
            (ben.has_direct_connection(&chloe_id) || chloe.has_direct_connection(&ben_id))
                .then_some(())
        },
    );
    let direct_at = start.elapsed();
    let direct = ben.connections_to(&chloe_id);
    assert!(
        direct
            .iter()
            .any(|(relayed, addr)| !relayed && addr.contains("203.0.113.101")),
        "the direct connection goes to Chloe's router: {direct:?}"
    );
    assert!(
        ben.log().contains("direct connection after hole punching")
            || chloe
                .log()
                .contains("direct connection after hole punching"),
        "the direct connection came from hole punching"
    );

    // Once direct, the relayed connections between them go (they would cost Ana's relay and
    // lose gossip when she vanishes).
    eventually(
        "no relayed Ben↔Chloe connection left",
        NETWORK_TIMEOUT,
        || {
            ben.connections_to(&chloe_id)
                .iter()
                .all(|(relayed, _)| !relayed)
                .then_some(())
        },
    );

    ben.send(circle, "hello from Ben's home");
    let first_message = chloe.wait_for_message(circle, "hello from Ben's home");
    eprintln!(
        "one reachable member: Ben joined in {ben_joined:.1?}; both relayed after {relayed_at:.1?}; \
         Ben↔Chloe direct after {direct_at:.1?}; first message Ben→Chloe in {first_message:.1?}"
    );

    // Ana's device goes away: Ben and Chloe keep talking over their direct connection.
    ana.stop();
    let start = Instant::now();
    chloe.send(circle, "Ana is away, still here");
    let without_ana = ben.wait_for_message(circle, "Ana is away, still here");
    assert!(ben.has_direct_connection(&chloe_id));
    eprintln!("without Ana: Chloe→Ben in {without_ana:.1?}");
    ben.send(circle, "Ben while Ana is away");
    let _ = start;

    // Ana comes back: everyone is connected again within 30 s, nobody restarts.
    ana.up(&[]);
    let back = Instant::now();
    eventually(
        "Ana connected again to Ben and Chloe",
        Duration::from_secs(30),
        || (ana.is_connected(&ben_id) && ana.is_connected(&chloe_id)).then_some(()),
    );
    let reconnected = back.elapsed();
    let catch_up = ana.wait_for_message(circle, "Ben while Ana is away");
    eprintln!(
        "reconnect: Ana back, connected to both in {reconnected:.1?}; caught up Ben's message in a further {catch_up:.1?}"
    );
    assert!(ben.is_connected(&ana_id) && chloe.is_connected(&ana_id));
}

/// Scenario "same home": two devices behind one router, ticket only, connect directly.
#[test]
fn two_devices_in_one_home_connect_directly_with_the_ticket() {
    let _serial = one_at_a_time();
    let Some(mut net) = Internet::new("same_home") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut home = net.home("home", Nat::Cone);
    let ana_host = net.host_in(&mut home, "ana");
    let ben_host = net.host_in(&mut home, "ben");
    let net = net;
    let mut ana = Device::new(&net, tmp.path(), ana_host, "Ana");
    let mut ben = Device::new(&net, tmp.path(), ben_host, "Ben");
    ana.up(&[]);
    ben.up(&[]);
    let circle = "Kitchen table";
    ana.create(circle);
    let start = Instant::now();
    ben.join(&ana.invite(circle));
    let joined = start.elapsed();
    let ana_id = ana.peer_id();
    assert!(ben.has_direct_connection(&ana_id));
    ben.send(circle, "same roof");
    let first = ana.wait_for_message(circle, "same roof");
    eprintln!("same home: joined in {joined:.1?}; first message in {first:.1?}");
}

const RELAY_BIN: &str = env!("CARGO_BIN_EXE_hearth-test-relay");
const STUN_BIN: &str = env!("CARGO_BIN_EXE_hearth-test-stun");
/// The port of the STUN server the UPnP routers ask for their public address.
const STUN_PORT: u16 = 3478;

/// Starts the test STUN server on `host`, waiting until it listens.
fn start_stun(net: &mut Internet, host: &Host) {
    use std::io::BufRead;
    let mut child = net
        .command(&host.ns, STUN_BIN)
        .args([host.ip.to_string(), STUN_PORT.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the STUN server starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    net.adopt(child);
    assert_eq!(line.trim(), "ready", "the STUN server says it is ready");
}

/// A home router whose UPnP service comes up after the daemon started (as for a laptop that
/// joins the home's network later) is found by a later search: the port is mapped without a
/// restart. Before, the router was looked for only once, at start.
#[test]
fn a_upnp_router_that_answers_only_after_start_is_found_without_a_restart() {
    let _serial = one_at_a_time();
    let Some(mut net) = Internet::new_with("upnp_late", &["miniupnpd", "iptables-legacy"]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let stun_host = net.public_host("stun");
    let mut home = net.upnp_home("homea");
    let ana_host = net.host_in(&mut home, "ana");
    start_stun(&mut net, &stun_host);
    let net = net;
    let mut ana = Device::new(&net, tmp.path(), ana_host, "Ana");
    ana.up(&[]);
    eventually(
        "Ana's first search to find no router",
        NETWORK_TIMEOUT,
        || ana.log().contains("no UPnP router found").then_some(()),
    );
    assert_ne!(ana.reachability(), "mapped");
    let (mut command, upnp_log) = net.miniupnpd(&home, stun_host.ip, STUN_PORT, tmp.path());
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _router = KillOnDrop(
        command
            .spawn()
            .expect("miniupnpd starts (Debian package miniupnpd-iptables)"),
    );
    let came_up = Instant::now();
    let mapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(
            "Ana's router to map her port after all",
            NETWORK_TIMEOUT,
            || (ana.reachability() == "mapped").then_some(()),
        )
    }));
    if let Err(panic) = mapped {
        eprintln!(
            "--- miniupnpd ---\n{}\n--- Ana ---\n{}",
            std::fs::read_to_string(&upnp_log).unwrap_or_default(),
            ana.log()
        );
        std::panic::resume_unwind(panic);
    }
    eprintln!(
        "late router: mapped {:.1} s after miniupnpd started",
        came_up.elapsed().as_secs_f64()
    );
}

/// Scenario "UPnP homes": Ana and Ben are each behind a router running miniupnpd; nobody is
/// public and there is no relay. Each daemon maps its port on its router, knows it is
/// reachable through the mapping and puts the router's address first in tickets; Ben joins
/// with Ana's ticket over a direct connection to her router's forwarded port.
#[test]
fn upnp_homes_map_their_ports_and_connect_directly() {
    let _serial = one_at_a_time();
    let Some(mut net) = Internet::new_with("upnp_homes", &["miniupnpd", "iptables-legacy"]) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let stun_host = net.public_host("stun");
    let mut home_a = net.upnp_home("homea");
    let mut home_b = net.upnp_home("homeb");
    let ana_host = net.host_in(&mut home_a, "ana");
    let ben_host = net.host_in(&mut home_b, "ben");
    start_stun(&mut net, &stun_host);
    let upnp_logs = [
        net.start_miniupnpd(&home_a, stun_host.ip, STUN_PORT, tmp.path()),
        net.start_miniupnpd(&home_b, stun_host.ip, STUN_PORT, tmp.path()),
    ];
    let show_upnp_logs = || {
        for log in &upnp_logs {
            eprintln!(
                "--- {} ---\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    };
    let net = net;
    let mut ana = Device::new(&net, tmp.path(), ana_host, "Ana");
    let mut ben = Device::new(&net, tmp.path(), ben_host, "Ben");
    let start = Instant::now();
    ana.up(&[]);
    ben.up(&[]);
    // Both map their ports and know it: "mapped", not "public" and not "relayed".
    for member in [&ana, &ben] {
        let mapped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            eventually(
                &format!("{}'s router to map her port", member.name),
                NETWORK_TIMEOUT,
                || (member.reachability() == "mapped").then_some(()),
            )
        }));
        if let Err(panic) = mapped {
            show_upnp_logs();
            std::panic::resume_unwind(panic);
        }
    }
    let mapped_at = start.elapsed();
    let ana_public = format!("/ip4/{}/tcp/{PORT}", home_a.wan_ip);
    assert!(
        ana.status()["external_addrs"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(&ana_public))),
        "Ana's mapped address is a confirmed external address: {}",
        ana.status()["external_addrs"]
    );

    let circle = "Two homes";
    ana.create(circle);
    let ticket = ana.invite(circle);
    let addresses = hearth_proto::invite::Ticket::parse(&ticket)
        .expect("a valid ticket")
        .addresses()
        .to_vec();
    assert!(
        addresses
            .first()
            .is_some_and(|a| a.starts_with(&format!("/ip4/{}/", home_a.wan_ip))),
        "Ana's ticket starts with her router's mapped address: {addresses:?}"
    );
    assert!(
        addresses.iter().any(|a| a.starts_with(&ana_public)),
        "the ticket holds {ana_public}: {addresses:?}"
    );
    let joined_from = Instant::now();
    ben.join(&ticket);
    let joined = joined_from.elapsed();
    let ana_id = ana.peer_id();
    let ben_id = ben.peer_id();
    let direct = ben.connections_to(&ana_id);
    assert!(
        direct
            .iter()
            .any(|(relayed, addr)| !relayed && addr.contains(&home_a.wan_ip.to_string())),
        "Ben holds a direct connection to Ana's router's forwarded port: {direct:?}"
    );
    ben.send(circle, "hello across the forwarded port");
    let first = ana.wait_for_message(circle, "hello across the forwarded port");
    ana.send(circle, "and back");
    let reply = ben.wait_for_message(circle, "and back");
    assert!(
        ana.connections_to(&ben_id)
            .iter()
            .all(|(relayed, _)| !relayed),
        "no relayed connection between them"
    );
    eprintln!(
        "UPnP homes: both mapped after {mapped_at:.1?}; Ben joined in {joined:.1?} (connected \
         directly); first message Ben→Ana in {first:.1?}; reply Ana→Ben in {reply:.1?}"
    );
}

/// Starts the stock relay on `host` and returns its address with `/p2p/<id>`.
fn start_stock_relay(net: &mut Internet, host: &Host) -> String {
    start_stock_relay_at(net, host, std::net::IpAddr::V4(host.ip))
}

/// Starts the stock relay on `host` at its address `ip` (IPv4 or IPv6) and returns its
/// address with `/p2p/<id>`.
fn start_stock_relay_at(net: &mut Internet, host: &Host, ip: std::net::IpAddr) -> String {
    use std::io::BufRead;
    let mut child = net
        .command(&host.ns, RELAY_BIN)
        .args([ip.to_string(), PORT.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the stock relay starts");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    net.adopt(child);
    let id = line
        .trim()
        .strip_prefix("peer id ")
        .unwrap_or_else(|| panic!("the relay prints its peer id, not {line:?}"));
    let family = if ip.is_ipv6() { "ip6" } else { "ip4" };
    format!("/{family}/{ip}/tcp/{PORT}/p2p/{id}")
}

/// The same relay address over QUIC: `/ip4/…/udp/<port>/quic-v1/p2p/<id>` for
/// `/ip4/…/tcp/<port>/p2p/<id>`.
fn over_quic(relay: &str) -> String {
    let (before, after) = relay.split_once("/tcp/").expect("a TCP relay address");
    let (port, rest) = after.split_once('/').expect("a port, then the peer id");
    format!("{before}/udp/{port}/quic-v1/{rest}")
}

/// Scenario "nobody reachable, one stock relay": Ana and Ben are both behind NATs; a
/// circuit relay v2 server that is not a Hearth node is named with `--relay`. Ana's ticket
/// carries her circuit address; Ben joins through the relay, they chat, catch up after Ben
/// was away, and hole punching makes the connection direct.
///
/// Ana names the relay by its QUIC address and Ben by its TCP one, so the relay sees each on
/// one transport only and each learns its own hole-punching candidate on that transport
/// alone. Hole punching still works because each also offers the other transport's twin of
/// that candidate (`candidates.rs`); without it, each dialed the other on a transport whose
/// pinhole the other never opened, and every round failed.
#[test]
fn nobody_reachable_a_stock_relay_carries_join_chat_and_catch_up() {
    let _serial = one_at_a_time();
    let Some(mut net) = Internet::new("stock_relay") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let relay_host = net.public_host("relay");
    let mut home_a = net.home("homea", Nat::Cone);
    let mut home_b = net.home("homeb", Nat::Cone);
    let ana_host = net.host_in(&mut home_a, "ana");
    let ben_host = net.host_in(&mut home_b, "ben");
    let relay = start_stock_relay(&mut net, &relay_host);
    let net = net;
    let mut ana = Device::new(&net, tmp.path(), ana_host, "Ana");
    let mut ben = Device::new(&net, tmp.path(), ben_host, "Ben");
    let start = Instant::now();
    ana.up(&relay_flag(over_quic(&relay)));
    ben.up(&relay_flag(relay.clone()));
    eventually("Ana's reservation on the relay", NETWORK_TIMEOUT, || {
        (ana.reachability() == "relayed").then_some(())
    });
    let reserved = start.elapsed();
    let circle = "Night owls";
    ana.create(circle);
    let start = Instant::now();
    ben.join(&ana.invite(circle));
    let joined = start.elapsed();
    let ana_id = ana.peer_id();
    ben.send(circle, "through the relay");
    let first = ana.wait_for_message(circle, "through the relay");
    eventually("a direct Ana↔Ben connection", NETWORK_TIMEOUT, || {
        ben.has_direct_connection(&ana_id).then_some(())
    });
    let direct = start.elapsed();
    eprintln!(
        "stock relay: reservation in {reserved:.1?}; Ben joined in {joined:.1?}; first message in {first:.1?}; direct after {direct:.1?}"
    );

    // Ben is away while Ana writes; when he is back he catches up.
    ben.stop();
    for i in 0..3 {
        ana.send(circle, &format!("while you were away {i}"));
    }
    let back = Instant::now();
    ben.up(&relay_flag(relay));
    for i in 0..3 {
        ben.wait_for_message(circle, &format!("while you were away {i}"));
    }
    eprintln!(
        "stock relay: Ben caught up 3 entries {:.1?} after starting",
        back.elapsed()
    );
}

/// Scenario "symmetric NAT on one side": hole punching cannot work, the connection stays
/// relayed and messages still flow both ways.
#[test]
fn symmetric_nat_on_one_side_stays_relayed_and_messages_flow() {
    let _serial = one_at_a_time();
    let Some(mut net) = Internet::new("symmetric_nat") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let relay_host = net.public_host("relay");
    let mut home_a = net.home("homea", Nat::Cone);
    let mut home_b = net.home("homeb", Nat::Symmetric);
    let ana_host = net.host_in(&mut home_a, "ana");
    let ben_host = net.host_in(&mut home_b, "ben");
    let relay = start_stock_relay(&mut net, &relay_host);
    let net = net;
    let mut ana = Device::new(&net, tmp.path(), ana_host, "Ana");
    let mut ben = Device::new(&net, tmp.path(), ben_host, "Ben");
    ana.up(&relay_flag(relay.clone()));
    ben.up(&relay_flag(relay));
    eventually("Ana's reservation on the relay", NETWORK_TIMEOUT, || {
        (ana.reachability() == "relayed").then_some(())
    });
    let circle = "Night owls";
    ana.create(circle);
    let start = Instant::now();
    ben.join(&ana.invite(circle));
    let joined = start.elapsed();
    let ana_id = ana.peer_id();
    ben.send(circle, "from behind the strict router");
    let first = ana.wait_for_message(circle, "from behind the strict router");
    // Hole punching is tried and fails; the relayed connection carries on.
    eventually("the hole punch to fail", NETWORK_TIMEOUT, || {
        (ana.log().contains("hole punching failed") || ben.log().contains("hole punching failed"))
            .then_some(())
    });
    let conns = ben.connections_to(&ana_id);
    assert!(
        !conns.is_empty() && conns.iter().all(|(relayed, _)| *relayed),
        "only relayed connections: {conns:?}"
    );
    ana.send(circle, "still here, through the relay");
    let reply = ben.wait_for_message(circle, "still here, through the relay");
    eprintln!(
        "symmetric NAT: joined in {joined:.1?}; first message in {first:.1?}; reply after the failed hole punch in {reply:.1?}"
    );
}

/// Scenario "IPv6 without NAT": Ana and Ben are in two homes with public IPv6 addresses and
/// no NAT, behind routers whose stateful firewalls drop every unsolicited inbound packet; the
/// daemons use IPv6 only. Neither can accept a connection, so they meet through a stock relay
/// (on IPv6), then DCUtR hole punching (simultaneous open through both firewalls) makes the
/// connection direct.
///
/// Before plain dials took a fresh local port, this failed about 1 run in 2: the join's dial
/// of Ana's address, still waiting on her firewall, held the address pair (Ben's listening
/// port, Ana's) that the first hole-punching round needed; that round fell back to a new port
/// and missed, and the failed attempt's TIME_WAIT spoiled the retries for a minute.
#[test]
fn ipv6_homes_behind_stateful_firewalls_connect_directly() {
    let _serial = one_at_a_time();
    let Some(mut net) = Internet::new("ipv6_firewalls") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let relay_host = net.public_host("relay");
    let mut home_a = net.home("homea", Nat::Cone);
    let mut home_b = net.home("homeb", Nat::Cone);
    let ana_host = net.host_in(&mut home_a, "ana");
    let ben_host = net.host_in(&mut home_b, "ben");
    let relay = start_stock_relay_at(&mut net, &relay_host, relay_host.ip6.into());
    let net = net;
    let mut ana = Device::new(&net, tmp.path(), ana_host, "Ana");
    let mut ben = Device::new(&net, tmp.path(), ben_host, "Ben");
    let v6 = "2001:db8::/32";
    let start = Instant::now();
    ana.up_on("/ip6/::", v6, &relay_flag(relay.clone()));
    ben.up_on("/ip6/::", v6, &relay_flag(relay));
    eventually("Ana's reservation on the relay", NETWORK_TIMEOUT, || {
        (ana.reachability() == "relayed").then_some(())
    });
    let reserved = start.elapsed();
    let circle = "Across the v6 internet";
    ana.create(circle);
    let start = Instant::now();
    ben.join(&ana.invite(circle));
    let joined = start.elapsed();
    let ana_id = ana.peer_id();
    ben.send(circle, "over IPv6");
    let first = ana.wait_for_message(circle, "over IPv6");
    eventually("a direct Ana↔Ben connection", NETWORK_TIMEOUT, || {
        ben.has_direct_connection(&ana_id).then_some(())
    });
    let direct_at = start.elapsed();
    let conns = ben.connections_to(&ana_id);
    assert!(
        conns
            .iter()
            .any(|(relayed, addr)| !relayed && addr.starts_with("/ip6/2001:db8:1::")),
        "the direct connection goes to Ana's own IPv6 address, no NAT: {conns:?}"
    );
    assert!(
        ana.log().contains("direct connection after hole punching")
            || ben.log().contains("direct connection after hole punching"),
        "the direct connection came from hole punching through both firewalls"
    );
    ana.send(circle, "direct now");
    let reply = ben.wait_for_message(circle, "direct now");
    eprintln!(
        "IPv6 firewalls: reservation in {reserved:.1?}; Ben joined in {joined:.1?}; first message \
         in {first:.1?}; direct after {direct_at:.1?}; reply over the direct connection in {reply:.1?}"
    );
}
