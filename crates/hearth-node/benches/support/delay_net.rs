//! A userspace delay switch for benchmarks: links with real latency on a kernel without
//! `sch_netem`.
//!
//! [`DelaySwitch::new`] makes one network namespace per node (`hb<pid>-<i>`), each with `lo` up
//! and one TUN device `hb0` at `198.51.100.<i+1>/24` (the documentation range; nothing else is
//! ever used). The switch holds every TUN fd. A reader thread per fd takes the IPv4 packets a
//! namespace sends, looks at the destination address, and queues each packet for that
//! destination stamped `now + delay`; a writer thread per destination writes them into the
//! destination's TUN when due, in queue order. Packets to any other address are dropped. Every
//! packet is delayed once, so a round trip takes twice the one-way delay.
//!
//! Teardown: dropping the switch (also on an error or during a panic's unwinding) sets a stop
//! flag, joins its threads (each waits at most [`POLL`] between checks of the flag), closes the
//! fds and deletes every namespace it made. Namespaces left by a process that was killed
//! (`hb<pid>-…` whose pid no longer runs) are deleted when the next switch is made.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a switch thread waits at most before it checks the stop flag again.
const POLL: Duration = Duration::from_millis(100);

/// The TUN device's name inside each namespace.
const TUN_NAME: &str = "hb0";

/// The most nodes a /24 holds with `.1` … `.n`.
const MAX_NODES: usize = 254;

/// A packet on its way to one destination, with the time it is due there.
type Queued = (Instant, Vec<u8>);

/// One namespace per node, joined by TUN devices through a switch that delays every packet.
pub struct DelaySwitch {
    /// The namespaces made so far (all deleted on drop, even a partly built switch's).
    names: Vec<String>,
    delay: Duration,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// IPv4 packets dropped for an unknown destination, for the report.
    dropped: Arc<AtomicU64>,
}

impl DelaySwitch {
    /// Makes `n` namespaces behind a switch with one-way delay `delay`. Fails with a clear
    /// message when not root or without `/dev/net/tun` (never falls back to loopback).
    pub fn new(n: usize, delay: Duration) -> Result<DelaySwitch> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        #[allow(unsafe_code)]
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            bail!(
                "the latency mode needs root (network namespaces and TUN devices); run as root or drop `latency=`"
            );
        }
        if !std::path::Path::new("/dev/net/tun").exists() {
            bail!("the latency mode needs /dev/net/tun, which this machine does not have");
        }
        if n == 0 || n > MAX_NODES {
            bail!("the switch holds 1 to {MAX_NODES} nodes, not {n}");
        }
        remove_stale_namespaces();
        let mut switch = DelaySwitch {
            names: Vec::new(),
            delay,
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            dropped: Arc::new(AtomicU64::new(0)),
        };
        let pid = std::process::id();
        let mut tuns = Vec::new();
        for i in 0..n {
            let name = format!("hb{pid}-{i}");
            ip(&["netns", "add", &name])?;
            switch.names.push(name.clone());
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            let tun = {
                let name = name.clone();
                std::thread::spawn(move || -> Result<File> {
                    enter_namespace(&name)?;
                    open_tun(TUN_NAME)
                })
                .join()
                .map_err(|_| anyhow::anyhow!("the thread opening a TUN device panicked"))??
            };
            tuns.push(Arc::new(tun));
            let addr = format!("{}/24", Self::addr(i));
            ip(&["-n", &name, "addr", "add", &addr, "dev", TUN_NAME])?;
            ip(&["-n", &name, "link", "set", TUN_NAME, "up"])?;
        }
        // One queue and writer per destination, one reader per source.
        let mut queues = Vec::new();
        for (j, tun) in tuns.iter().enumerate() {
            let (tx, rx) = mpsc::channel::<Queued>();
            queues.push(tx);
            let tun = Arc::clone(tun);
            let stop = Arc::clone(&switch.stop);
            switch.threads.push(
                std::thread::Builder::new()
                    .name(format!("switch-w{j}"))
                    .spawn(move || write_loop(&tun, &rx, &stop))?,
            );
        }
        for (i, tun) in tuns.iter().enumerate() {
            let tun = Arc::clone(tun);
            let stop = Arc::clone(&switch.stop);
            let dropped = Arc::clone(&switch.dropped);
            let queues = queues.clone();
            switch.threads.push(
                std::thread::Builder::new()
                    .name(format!("switch-r{i}"))
                    .spawn(move || read_loop(&tun, &queues, delay, &stop, &dropped))?,
            );
        }
        Ok(switch)
    }

    /// Node `i`'s address: `198.51.100.<i+1>`.
    pub fn addr(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(
            198,
            51,
            100,
            u8::try_from(i + 1).expect("at most 254 nodes"),
        )
    }

    /// The one-way delay of every packet.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// IPv4 packets dropped so far, to an address that no namespace has.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The name of namespace `i`.
    pub fn namespace(&self, i: usize) -> Result<String> {
        self.names
            .get(i)
            .cloned()
            .with_context(|| format!("the switch has no namespace {i}"))
    }

    /// Runs `f` on a new thread inside namespace `i`: every socket it makes belongs there.
    pub fn spawn_in<T: Send + 'static>(
        &self,
        i: usize,
        thread_name: String,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<JoinHandle<Result<T>>> {
        let name = self
            .names
            .get(i)
            .with_context(|| format!("the switch has no namespace {i}"))?
            .clone();
        Ok(std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                enter_namespace(&name)?;
                f()
            })?)
    }

    /// Times TCP connects (one round trip each) from namespace 0 to namespace 1 and returns
    /// their median; fails if it is below twice the one-way delay (the switch does not delay).
    pub fn check(&self, tries: usize) -> Result<Duration> {
        if self.names.len() < 2 {
            bail!("the switch check needs two namespaces");
        }
        // The listener is made in namespace 1; the kernel completes handshakes into its
        // backlog, so nobody needs to accept.
        let listener = self
            .spawn_in(1, "switch-check-listen".into(), || {
                Ok(TcpListener::bind((Self::addr(1), 0))?)
            })?
            .join()
            .map_err(|_| anyhow::anyhow!("the switch check's listener thread panicked"))??;
        let target: SocketAddr = listener.local_addr()?;
        let times = self
            .spawn_in(0, "switch-check-connect".into(), move || {
                let mut times = Vec::new();
                for _ in 0..tries {
                    let started = Instant::now();
                    let stream = TcpStream::connect_timeout(&target, Duration::from_secs(5))
                        .with_context(|| {
                            format!("cannot connect to {target} through the switch")
                        })?;
                    times.push(started.elapsed());
                    drop(stream);
                }
                Ok(times)
            })?
            .join()
            .map_err(|_| anyhow::anyhow!("the switch check's connect thread panicked"))??;
        drop(listener);
        let mut times = times;
        times.sort();
        let median = times[times.len() / 2];
        if median < 2 * self.delay {
            bail!(
                "the switch does not delay: a TCP connect took {:.2} ms, below the round trip of {:.2} ms",
                median.as_secs_f64() * 1e3,
                (2 * self.delay).as_secs_f64() * 1e3
            );
        }
        Ok(median)
    }
}

impl Drop for DelaySwitch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        for name in &self.names {
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("warning: cannot delete network namespace {name}: {e:#}");
            }
        }
    }
}

/// Runs `ip` with `args`, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run `ip` (iproute2)")?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Deletes namespaces `hb<pid>-<i>` whose process no longer runs (a killed earlier run's).
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some((pid, index)) = name.strip_prefix("hb").and_then(|r| r.split_once('-')) else {
            continue;
        };
        let ours = pid.parse::<u32>().is_ok() && index.parse::<u32>().is_ok();
        if ours && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Moves the calling thread into the named network namespace (`ip netns` names).
fn enter_namespace(name: &str) -> Result<()> {
    let ns = File::open(format!("/var/run/netns/{name}"))
        .with_context(|| format!("cannot open network namespace {name}"))?;
    // SAFETY: the fd is valid for the call (`ns` lives to the end of the function); setns only
    // changes this thread's network namespace.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot enter network namespace {name}"));
    }
    Ok(())
}

/// `struct ifreq` as TUNSETIFF reads it: a name and the flags (the rest of the union unused).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Opens a TUN device (IPv4 packets, no packet-info header) in the thread's namespace.
fn open_tun(name: &str) -> Result<File> {
    let tun = File::options()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("cannot open /dev/net/tun")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: `req` is a valid, properly sized `struct ifreq` that outlives the call, and the
    // fd is an open /dev/net/tun.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("TUNSETIFF failed");
    }
    Ok(tun)
}

/// Waits up to [`POLL`] for the fd to be readable.
fn readable(tun: &File) -> bool {
    let mut fd = libc::pollfd {
        fd: tun.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the length given; the fd is open while `tun` lives.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::poll(&mut fd, 1, POLL.as_millis() as libc::c_int) };
    rc > 0 && fd.revents & libc::POLLIN != 0
}

/// A source's reader: every IPv4 packet goes to its destination's queue, due after `delay`.
fn read_loop(
    tun: &File,
    queues: &[mpsc::Sender<Queued>],
    delay: Duration,
    stop: &AtomicBool,
    dropped: &AtomicU64,
) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        if !readable(tun) {
            continue;
        }
        let len = match (&*tun).read(&mut buf) {
            Ok(len) => len,
            Err(_) => continue,
        };
        let now = Instant::now();
        let packet = &buf[..len];
        // Only IPv4 crosses (the kernel's own IPv6 link-local chatter is ignored, not counted).
        if len < 20 || packet[0] >> 4 != 4 {
            continue;
        }
        let to = (packet[16..19] == [198, 51, 100])
            .then(|| usize::from(packet[19]))
            .filter(|host| (1..=queues.len()).contains(host))
            .map(|host| host - 1);
        match to {
            Some(j) => {
                let _ = queues[j].send((now + delay, packet.to_vec()));
            }
            None => {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A destination's writer: writes queued packets into its TUN when due, in queue order.
fn write_loop(tun: &File, queue: &mpsc::Receiver<Queued>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let (due, packet) = match queue.recv_timeout(POLL) {
            Ok(queued) => queued,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        // Sleep until due (at most the delay, a bounded wait); a late packet goes at once.
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // A write fails only if the device is down (during teardown): drop the packet.
        let _ = (&*tun).write(&packet);
    }
}

/// A multi-thread tokio runtime (two workers, as a device's daemon has) whose every thread,
/// workers and blocking pool alike, runs inside the namespace `name`. Build and drop it on a
/// thread of its own (a runtime cannot be dropped inside another one).
pub fn runtime_in(name: String) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // A thread outside the namespace would make its sockets on the host.
            enter_namespace(&name).expect("a runtime thread enters its node's namespace");
        })
        .build()?)
}
