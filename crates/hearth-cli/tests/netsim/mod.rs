//! A simulated internet of Linux network namespaces for reachability tests.
//!
//! - The internet is a bridge in its own namespace, on 203.0.113.0/24 and 2001:db8:ffff::/64.
//! - A public host sits on that bridge with an address of its own.
//! - A home is a router namespace (WAN on the internet, LAN bridge inside) that does NAT with
//!   iptables MASQUERADE (`--random-fully` for a symmetric NAT) and drops every unsolicited
//!   inbound packet, IPv4 and IPv6 (a stateful firewall; IPv6 is routed without NAT). Homes
//!   get 198.51.100.0/25, 198.51.100.128/25, 192.0.2.0/25 and 192.0.2.128/25, and
//!   2001:db8:<n>::/64.
//! - A UPnP home's router runs miniupnpd (Debian package `miniupnpd-iptables`), whose rules
//!   are the only way in: its chains hang off the router's PREROUTING and FORWARD, before the
//!   drop. miniupnpd's libiptc speaks the legacy iptables interface, so that router's whole
//!   firewall is built with `iptables-legacy` (one rule set, in the order written here).
//!
//! Only those documentation ranges are used, only inside namespaces this module creates.
//! Namespace names carry the process id and a counter, so tests may run in parallel. Dropping
//! the [`Internet`] kills every process started in its namespaces and deletes them, also when
//! the test panicked.

#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// How a home router translates addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    /// MASQUERADE: the port is kept when it is free (endpoint-independent mapping), so hole
    /// punching works.
    Cone,
    /// MASQUERADE `--random-fully`: a random port for every destination, so hole punching
    /// fails.
    Symmetric,
}

/// A namespace a program can run in.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace's name.
    pub ns: String,
    /// Its IPv4 address.
    pub ip: Ipv4Addr,
    /// Its IPv6 address.
    pub ip6: Ipv6Addr,
}

/// A home: a router and its LAN.
#[derive(Debug, Clone)]
pub struct Home {
    /// The router's namespace.
    pub router: String,
    /// The router's address on the internet.
    pub wan_ip: Ipv4Addr,
    index: u8,
    hosts: u8,
    /// The router runs miniupnpd (see [`Internet::upnp_home`]).
    upnp: bool,
}

/// The simulated internet. Drop tears it down.
#[derive(Debug)]
pub struct Internet {
    prefix: String,
    inet: String,
    namespaces: Vec<String>,
    children: Vec<Child>,
    public_hosts: u8,
    homes: Vec<(u8, Ipv6Addr)>,
    /// Namespaces that route IPv6 to homes: public hosts and routers.
    v6_routers: Vec<String>,
}

/// Why the simulated internet cannot be built here, if it cannot.
fn missing_prerequisite(extra: &[&str]) -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("the tests must run as root to create network namespaces".into());
    }
    for tool in ["ip", "iptables", "ip6tables"].iter().chain(extra) {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Some(format!(
                "`{tool}` is missing (Debian packages iproute2, iptables and miniupnpd-iptables)"
            ));
        }
    }
    // Debian's plain `miniupnpd` brings the nftables backend, which maps nothing on these
    // routers (their firewall is legacy iptables): say so instead of timing out later.
    if extra.contains(&"miniupnpd") {
        let status = Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", "miniupnpd-iptables"])
            .stderr(Stdio::null())
            .output();
        if let Ok(out) = status
            && !String::from_utf8_lossy(&out.stdout).contains("install ok installed")
        {
            return Some(
                "miniupnpd's iptables backend is missing (Debian package miniupnpd-iptables; \
                 the nftables one does not work with the simulated routers)"
                    .into(),
            );
        }
    }
    None
}

fn sh(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

fn must(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Internet {
    /// Builds an empty internet, or says loudly why it cannot (and fails under `CI=true`).
    pub fn new(test: &str) -> Option<Internet> {
        Self::new_with(test, &[])
    }

    /// Like [`Internet::new`], when the test also needs the programs `tools`.
    pub fn new_with(test: &str, tools: &[&str]) -> Option<Internet> {
        if let Some(why) = missing_prerequisite(tools) {
            let msg = format!("SKIPPING {test}: {why}");
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{msg} (CI=true: a missing prerequisite is a failure)");
            }
            eprintln!("\n!!!!!!!!\n!!! {msg}\n!!!!!!!!\n");
            return None;
        }
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("hn{}x{n}", std::process::id());
        let mut net = Internet {
            inet: format!("{prefix}-inet"),
            prefix,
            namespaces: Vec::new(),
            children: Vec::new(),
            public_hosts: 0,
            homes: Vec::new(),
            v6_routers: Vec::new(),
        };
        let inet = net.inet.clone();
        net.add_ns(&inet);
        must(&["ip", "-n", &inet, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &inet, "link", "set", "br0", "up"]);
        Some(net)
    }

    fn add_ns(&mut self, ns: &str) {
        must(&["ip", "netns", "add", ns]);
        self.namespaces.push(ns.to_owned());
        must(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }

    /// Runs a command in a namespace and returns its output.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        let mut all = vec!["ip", "netns", "exec", ns];
        all.extend_from_slice(args);
        sh(&all)
    }

    fn exec_ok(&self, ns: &str, args: &[&str]) {
        let mut all = vec!["ip", "netns", "exec", ns];
        all.extend_from_slice(args);
        must(&all);
    }

    /// A command that runs `program` in the namespace of `host`.
    pub fn command(&self, ns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }

    /// Remembers a process so that it is killed when the internet is torn down.
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }

    /// Plugs `ns` into the internet bridge as `eth0` (or `wan` for a router).
    fn plug(&mut self, ns: &str, ifname: &str, ip: Ipv4Addr, ip6: Ipv6Addr) {
        let port = format!("p{}", self.namespaces.len());
        must(&[
            "ip", "-n", ns, "link", "add", ifname, "type", "veth", "peer", "name", &port, "netns",
            &self.inet,
        ]);
        must(&[
            "ip", "-n", &self.inet, "link", "set", &port, "master", "br0",
        ]);
        must(&["ip", "-n", &self.inet, "link", "set", &port, "up"]);
        must(&[
            "ip",
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            ifname,
        ]);
        must(&[
            "ip",
            "-n",
            ns,
            "-6",
            "addr",
            "add",
            &format!("{ip6}/64"),
            "dev",
            ifname,
            "nodad",
        ]);
        must(&["ip", "-n", ns, "link", "set", ifname, "up"]);
        // Routes to every home's IPv6 network through its router.
        for (index, wan6) in self.homes.clone() {
            self.route6(ns, index, wan6);
        }
        self.v6_routers.push(ns.to_owned());
    }

    fn route6(&self, ns: &str, index: u8, via: Ipv6Addr) {
        must(&[
            "ip",
            "-n",
            ns,
            "-6",
            "route",
            "replace",
            &format!("2001:db8:{}::/64", index + 1),
            "via",
            &via.to_string(),
        ]);
    }

    /// A host on the internet with a public address (203.0.113.10, .11, …).
    pub fn public_host(&mut self, name: &str) -> Host {
        let n = self.public_hosts;
        self.public_hosts += 1;
        let ns = format!("{}-{name}", self.prefix);
        self.add_ns(&ns);
        let ip = Ipv4Addr::new(203, 0, 113, 10 + n);
        let ip6: Ipv6Addr = format!("2001:db8:ffff::{:x}", 0x10 + n as u16)
            .parse()
            .unwrap();
        self.plug(&ns, "eth0", ip, ip6);
        Host { ns, ip, ip6 }
    }

    /// A home behind a NAT router with a stateful firewall (unsolicited inbound dropped).
    pub fn home(&mut self, name: &str, nat: Nat) -> Home {
        self.build_home(name, nat, false)
    }

    /// A home whose router (a cone NAT with a stateful firewall) forwards ports on request
    /// with UPnP IGD, once [`Internet::start_miniupnpd`] runs. Its firewall lets in nothing
    /// unsolicited but what miniupnpd's chains accept.
    pub fn upnp_home(&mut self, name: &str) -> Home {
        self.build_home(name, Nat::Cone, true)
    }

    fn build_home(&mut self, name: &str, nat: Nat, upnp: bool) -> Home {
        let (iptables, ip6tables) = if upnp {
            ("iptables-legacy", "ip6tables-legacy")
        } else {
            ("iptables", "ip6tables")
        };
        let index = self.homes.len() as u8;
        assert!(index < 4, "at most four homes");
        let router = format!("{}-{name}", self.prefix);
        self.add_ns(&router);
        let wan_ip = Ipv4Addr::new(203, 0, 113, 100 + index);
        let wan6: Ipv6Addr = format!("2001:db8:ffff::{:x}", 0x100 + index as u16)
            .parse()
            .unwrap();
        self.plug(&router, "wan", wan_ip, wan6);
        // Every namespace on the internet routes this home's IPv6 network to the router.
        for ns in self.v6_routers.clone() {
            if ns != router {
                self.route6(&ns, index, wan6);
            }
        }
        self.homes.push((index, wan6));
        let (lan_ip, lan_prefix) = Self::lan(index, 1);
        must(&["ip", "-n", &router, "link", "add", "lan", "type", "bridge"]);
        must(&[
            "ip",
            "-n",
            &router,
            "addr",
            "add",
            &format!("{lan_ip}/{lan_prefix}"),
            "dev",
            "lan",
        ]);
        must(&[
            "ip",
            "-n",
            &router,
            "-6",
            "addr",
            "add",
            &format!("2001:db8:{}::1/64", index + 1),
            "dev",
            "lan",
            "nodad",
        ]);
        must(&["ip", "-n", &router, "link", "set", "lan", "up"]);
        self.exec_ok(&router, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        self.exec_ok(
            &router,
            &["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"],
        );
        if upnp {
            // miniupnpd's chains (its iptables_init.sh, with the legacy tool): port
            // forwards in nat PREROUTING, their accept rules in FORWARD before the drop.
            for (table, chain, hook, dir) in [
                ("nat", "MINIUPNPD", "PREROUTING", "-i"),
                ("nat", "MINIUPNPD-POSTROUTING", "POSTROUTING", "-o"),
                ("mangle", "MINIUPNPD", "PREROUTING", "-i"),
            ] {
                self.exec_ok(&router, &[iptables, "-t", table, "-N", chain]);
                self.exec_ok(
                    &router,
                    &[iptables, "-t", table, "-A", hook, dir, "wan", "-j", chain],
                );
            }
            self.exec_ok(&router, &[iptables, "-t", "filter", "-N", "MINIUPNPD"]);
        }
        let mut masquerade = vec![
            iptables,
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            "wan",
            "-j",
            "MASQUERADE",
        ];
        if nat == Nat::Symmetric {
            masquerade.push("--random-fully");
        }
        self.exec_ok(&router, &masquerade);
        for tool in [iptables, ip6tables] {
            for chain in ["FORWARD", "INPUT"] {
                self.exec_ok(
                    &router,
                    &[
                        tool,
                        "-A",
                        chain,
                        "-i",
                        "wan",
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "ESTABLISHED,RELATED",
                        "-j",
                        "ACCEPT",
                    ],
                );
                if upnp && tool == iptables && chain == "FORWARD" {
                    self.exec_ok(
                        &router,
                        &[
                            tool,
                            "-A",
                            chain,
                            "-i",
                            "wan",
                            "!",
                            "-o",
                            "wan",
                            "-j",
                            "MINIUPNPD",
                        ],
                    );
                }
                if tool == ip6tables && chain == "INPUT" {
                    // Neighbour discovery is not connection-tracked: without it the router
                    // cannot resolve any address on the internet (as RFC 4890 asks of an
                    // IPv6 firewall, it is let through).
                    for kind in ["neighbour-solicitation", "neighbour-advertisement"] {
                        self.exec_ok(
                            &router,
                            &[
                                tool,
                                "-A",
                                chain,
                                "-i",
                                "wan",
                                "-p",
                                "ipv6-icmp",
                                "--icmpv6-type",
                                kind,
                                "-j",
                                "ACCEPT",
                            ],
                        );
                    }
                }
                self.exec_ok(&router, &[tool, "-A", chain, "-i", "wan", "-j", "DROP"]);
            }
        }
        Home {
            router,
            wan_ip,
            index,
            hosts: 0,
            upnp,
        }
    }

    /// Starts miniupnpd on a UPnP home's router, with its configuration in `dir`: WAN `wan`,
    /// serving the LAN bridge, `secure_mode` (a device maps ports only to itself), allowed
    /// for the home's range and unprivileged ports only. It learns its public address from
    /// the STUN server at `stun` (see `hearth-test-stun`): miniupnpd refuses to map ports
    /// when the router's own address is in a reserved range, as every simulated one is.
    /// Returns the daemon's log file. Killed when the internet is torn down.
    pub fn start_miniupnpd(
        &mut self,
        home: &Home,
        stun: Ipv4Addr,
        stun_port: u16,
        dir: &std::path::Path,
    ) -> std::path::PathBuf {
        let (mut command, log) = self.miniupnpd(home, stun, stun_port, dir);
        let child = command
            .spawn()
            .expect("miniupnpd starts (Debian package miniupnpd-iptables)");
        self.adopt(child);
        log
    }

    /// The command that starts miniupnpd as [`Internet::start_miniupnpd`] does, and its log
    /// file, for a test that starts it later (the caller kills it).
    pub fn miniupnpd(
        &self,
        home: &Home,
        stun: Ipv4Addr,
        stun_port: u16,
        dir: &std::path::Path,
    ) -> (Command, std::path::PathBuf) {
        assert!(home.upnp, "{} was not built with upnp_home", home.router);
        let (lan, prefix) = Self::lan(home.index, 0);
        let conf = dir.join(format!("miniupnpd-{}.conf", home.router));
        let pid = dir.join(format!("miniupnpd-{}.pid", home.router));
        let log = dir.join(format!("miniupnpd-{}.log", home.router));
        std::fs::write(
            &conf,
            format!(
                "ext_ifname=wan\n\
                 listening_ip=lan\n\
                 http_port=0\n\
                 enable_natpmp=no\n\
                 enable_upnp=yes\n\
                 ipv6_disable=yes\n\
                 secure_mode=yes\n\
                 system_uptime=yes\n\
                 ext_perform_stun=yes\n\
                 ext_stun_host={stun}\n\
                 ext_stun_port={stun_port}\n\
                 upnp_forward_chain=MINIUPNPD\n\
                 upnp_nat_chain=MINIUPNPD\n\
                 upnp_nat_postrouting_chain=MINIUPNPD-POSTROUTING\n\
                 uuid=3f2a5e4c-1b6d-4c8e-9a7f-00000000000{}\n\
                 allow 1024-65535 {lan}/{prefix} 1024-65535\n\
                 deny 0-65535 0.0.0.0/0 0-65535\n",
                home.index
            ),
        )
        .unwrap();
        let file = std::fs::File::create(&log).unwrap();
        let mut command = self.command(&home.router, "miniupnpd");
        command
            .arg("-d")
            .arg("-f")
            .arg(&conf)
            .arg("-P")
            .arg(&pid)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        (command, log)
    }

    /// The LAN address number `host` of home `index`, and the prefix length.
    fn lan(index: u8, host: u8) -> (Ipv4Addr, u8) {
        let (b, c, d) = match index {
            0 => (51, 100, 0),
            1 => (51, 100, 128),
            2 => (0, 2, 0),
            _ => (0, 2, 128),
        };
        let a = if b == 51 { 198 } else { 192 };
        (Ipv4Addr::new(a, b, c, d + host), 25)
    }

    /// A device in a home.
    pub fn host_in(&mut self, home: &mut Home, name: &str) -> Host {
        home.hosts += 1;
        let number = home.hosts + 1;
        let ns = format!("{}-{name}", self.prefix);
        self.add_ns(&ns);
        let port = format!("h{}", self.namespaces.len());
        must(&[
            "ip",
            "-n",
            &ns,
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &home.router,
        ]);
        must(&[
            "ip",
            "-n",
            &home.router,
            "link",
            "set",
            &port,
            "master",
            "lan",
        ]);
        must(&["ip", "-n", &home.router, "link", "set", &port, "up"]);
        let (ip, prefix) = Self::lan(home.index, number);
        let (gateway, _) = Self::lan(home.index, 1);
        let ip6: Ipv6Addr = format!("2001:db8:{}::{:x}", home.index + 1, number)
            .parse()
            .unwrap();
        must(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ip}/{prefix}"),
            "dev",
            "eth0",
        ]);
        must(&[
            "ip",
            "-n",
            &ns,
            "-6",
            "addr",
            "add",
            &format!("{ip6}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
        must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
        must(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &gateway.to_string(),
        ]);
        must(&[
            "ip",
            "-n",
            &ns,
            "-6",
            "route",
            "add",
            "default",
            "via",
            &format!("2001:db8:{}::1", home.index + 1),
        ]);
        Host { ns, ip, ip6 }
    }

    /// Kills every process running in `ns` (only processes started by this test live there).
    pub fn kill_all_in(&self, ns: &str) {
        let out = sh(&["ip", "netns", "pids", ns]);
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = sh(&["kill", "-9", pid]);
        }
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            self.kill_all_in(ns);
        }
        for ns in self.namespaces.iter().rev() {
            let _ = sh(&["ip", "netns", "del", ns]);
        }
    }
}
