#!/usr/bin/env python3
"""Helpers for scripts/bench.sh (espgw-dataplane side by side with DPDK's ipsec-secgw).

  benchtool.py configs DIR [--backends ring,cryptodev]
      Random keys and every configuration file of one run: espgw JSON and ipsec-secgw cfg for
      both algorithms and directions, and the plain-route espgw files. All mode 0600.
  benchtool.py sample PREFIX --pid PID --size SIZE [--warmup S] [--window S] [--meta JSON]
      Waits for the process's telemetry socket and its first transmitted packet, lets it warm
      up, then reads /ethdev/stats of both ports at t0 and t1 and prints one JSON object.
  benchtool.py wait-tx PREFIX --pid PID --pcap PCAP
      Waits until the process has sent as many packets on port 1 as PCAP holds.
  benchtool.py compare-esp A.pcap B.pcap
      Checks that two gateways' ESP output for the same input and SA is the same bytes.
  benchtool.py esp-len SIZE
      The ESP payload length (what AES-GCM encrypts) of each frame size SIZE implies, one per
      line (three for imix).
  benchtool.py cryptoperf CSV_FILE
      "buffer_size mops" lines from dpdk-test-crypto-perf --csv-friendly output.
  benchtool.py table RESULTS.jsonl [--markdown FILE] [--json FILE]
      Medians per case and the side-by-side table.

The two gateways ("g" encrypts, "p" decrypts) mirror each other:

  cleartext pcap -> port 0 [g: lan0 10.1.0.1/16 | wan0 192.0.2.1] port 1 -> net_null (ESP)
  ESP pcap       -> port 0 [p: wan0 192.0.2.2 | lan0 10.2.0.1/16]  port 1 -> net_null (clear)

g's outbound SA 0x1001 (4097) is p's inbound SA; p's outbound SA 0x2001 (8193) is g's inbound SA
(ipsec-secgw insists on both directions). Inbound SAs run without anti-replay: the replayed pcap
repeats its sequence numbers, and ipsec-secgw's default replay window is 0 as well.
"""
import argparse
import json
import os
import statistics
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dpdk_telemetry import Telemetry  # noqa: E402

ALGOS = {"aes-128-gcm": 20, "aes-256-gcm": 36}  # KEYMAT bytes: key || 4-byte salt (RFC 4106)
SPI_G_OUT = 0x1001
SPI_P_OUT = 0x2001
# Frame sizes count the 4-byte FCS, as RFC 2544, IMIX and pktgen do: a 64-byte frame is 60 bytes
# in the pcap. (frame bytes, weight)
IMIX = [(64, 7), (570, 4), (1518, 1)]
FCS = 4

MAC = {
    "g_lan": "02:00:00:00:01:01", "g_wan": "02:00:00:00:0a:01",
    "p_wan": "02:00:00:00:0a:02", "p_lan": "02:00:00:00:02:01",
    "host_a": "02:00:00:00:01:10", "host_b": "02:00:00:00:02:10",
}


def write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


# ---- configs ----

def remote_net(role: str, tunnels: int, t: int) -> str:
    """What tunnel t carries, seen from `role`: the far site's /16 with one tunnel, else its
    10.x.t.0/24 (pcapgen.py sends frame k to host 10.2.(k mod N).10)."""
    site = 2 if role == "g" else 1
    return f"10.{site}.0.0/16" if tunnels == 1 else f"10.{site}.{t}.0/24"


def espgw_gateway(role: str, algo: str, keys: dict, tunnels: int, crypto: str | None) -> dict:
    """g: encrypts 10.1/16 -> 10.2/16 (pcap on lan0 = port 0); p: decrypts (pcap on wan0 = port 0).
    One tunnel (an SA pair) per destination subnet: tunnel t has SAs 0x1001 + t and 0x2001 + t.
    The EAL arguments come from bench.sh's command line (after --), identical for both sides."""
    if role == "g":
        ifs = [{"name": "lan0", "port": 0, "address": "10.1.0.1/16", "mac": MAC["g_lan"]},
               {"name": "wan0", "port": 1, "address": "192.0.2.1/24", "mac": MAC["g_wan"], "mtu": 9000}]
        local, remote, out_spi, in_spi = "192.0.2.1", "192.0.2.2", SPI_G_OUT, SPI_P_OUT
        neigh = [{"address": "192.0.2.2", "mac": MAC["p_wan"]}]
    else:
        ifs = [{"name": "wan0", "port": 0, "address": "192.0.2.2/24", "mac": MAC["p_wan"], "mtu": 9000},
               {"name": "lan0", "port": 1, "address": "10.2.0.1/16", "mac": MAC["p_lan"]}]
        local, remote, out_spi, in_spi = "192.0.2.2", "192.0.2.1", SPI_P_OUT, SPI_G_OUT
        neigh = [{"address": "192.0.2.1", "mac": MAC["g_wan"]}]
        neigh += [{"address": f"10.2.{t}.10", "mac": MAC["host_b"]} for t in range(tunnels)]
    dp = {"eal": [], "workers": [1]}
    if crypto:
        dp["crypto"] = crypto
    sas = []
    for t in range(tunnels):
        sas += [{"tunnel": f"st0.{t}", "direction": "out", "spi": out_spi + t, "algorithm": algo,
                 "key": keys[out_spi + t]},
                {"tunnel": f"st0.{t}", "direction": "in", "spi": in_spi + t, "algorithm": algo,
                 "key": keys[in_spi + t], "replay_window": 0}]
    return {
        "dataplane": dp,
        "interfaces": ifs,
        "neighbors": neigh,
        "tunnels": [{"name": f"st0.{t}", "local": local, "remote": remote} for t in range(tunnels)],
        "routes": [{"prefix": remote_net(role, tunnels, t), "via": f"st0.{t}"} for t in range(tunnels)],
        "manual_sas": sas,
    }


def espgw_route(role: str, tunnels: int) -> dict:
    """The same ports and frames with no crypto: what replaying the pcap and routing it costs.
    g routes the cleartext frames to a next hop on wan0. p forwards the ESP frames as transit
    traffic: its wan0 keeps the MAC the frames are sent to but sits on another subnet, so
    192.0.2.2 is not ours and is routed out of port 1."""
    if role == "g":
        ifs = [{"name": "lan0", "port": 0, "address": "10.1.0.1/16", "mac": MAC["g_lan"]},
               {"name": "wan0", "port": 1, "address": "192.0.2.1/24", "mac": MAC["g_wan"], "mtu": 9000}]
        neigh = [{"address": "192.0.2.2", "mac": MAC["p_wan"]}]
        routes = [{"prefix": "10.2.0.0/16", "via": "192.0.2.2"}]
    else:
        ifs = [{"name": "wan0", "port": 0, "address": "198.51.100.2/24", "mac": MAC["p_wan"], "mtu": 9000},
               {"name": "lan0", "port": 1, "address": "10.2.0.1/16", "mac": MAC["p_lan"], "mtu": 9000}]
        neigh = [{"address": "10.2.0.10", "mac": MAC["host_b"]}]
        routes = [{"prefix": "192.0.2.0/24", "via": "10.2.0.10"}]
    return {"dataplane": {"eal": [], "workers": [1]}, "interfaces": ifs, "neighbors": neigh, "routes": routes}


def secgw_cfg(role: str, algo: str, keys: dict, tunnels: int) -> str:
    """ipsec-secgw's ep0.cfg syntax, the same SAs and subnets as espgw_gateway. Its
    'unprotected' ports face the ESP side (-u mask in bench.sh): port 1 for g, port 0 for p."""
    def key(spi: int) -> str:
        return ":".join(keys[spi][i:i + 2] for i in range(0, len(keys[spi]), 2))

    def sa(d: str, spi: int, src: str, dst: str) -> str:
        return f"sa {d} {spi} aead_algo {algo} aead_key {key(spi)} mode ipv4-tunnel src {src} dst {dst}"

    ports = "sport 0:65535 dport 0:65535"
    lines = []
    for t in range(tunnels):
        to_p, to_g = remote_net("g", tunnels, t), remote_net("p", tunnels, t)
        if role == "g":
            lines += [f"sp ipv4 out esp protect {SPI_G_OUT + t} pri 1 dst {to_p} {ports}",
                      f"sp ipv4 in esp protect {SPI_P_OUT + t} pri 1 dst {to_g} {ports}",
                      sa("out", SPI_G_OUT + t, "192.0.2.1", "192.0.2.2"),
                      sa("in", SPI_P_OUT + t, "192.0.2.2", "192.0.2.1")]
        else:
            lines += [f"sp ipv4 in esp protect {SPI_G_OUT + t} pri 1 dst {to_p} {ports}",
                      f"sp ipv4 out esp protect {SPI_P_OUT + t} pri 1 dst {to_g} {ports}",
                      sa("in", SPI_G_OUT + t, "192.0.2.1", "192.0.2.2"),
                      sa("out", SPI_P_OUT + t, "192.0.2.2", "192.0.2.1")]
    if role == "g":
        lines += ["rt ipv4 dst 192.0.2.2/32 port 1",
                  "rt ipv4 dst 10.1.0.0/16 port 0",
                  f"neigh port 1 {MAC['p_wan']}",
                  f"neigh port 0 {MAC['host_a']}"]
    else:
        lines += ["rt ipv4 dst 10.2.0.0/16 port 1",
                  "rt ipv4 dst 192.0.2.1/32 port 0",
                  f"neigh port 1 {MAC['host_b']}",
                  f"neigh port 0 {MAC['g_wan']}"]
    return "\n".join(lines) + "\n"


def cmd_configs(a) -> None:
    backends = [b for b in (a.backends or "").split(",") if b]
    for algo, keylen in ALGOS.items():
        d = os.path.join(a.dir, algo)
        os.makedirs(d, mode=0o700, exist_ok=True)
        keys = {spi + t: os.urandom(keylen).hex()
                for spi in (SPI_G_OUT, SPI_P_OUT) for t in range(a.tunnels)}
        for role, name in (("g", "encrypt"), ("p", "decrypt")):
            for b in [None] + backends:
                suffix = f".{b}" if b else ""
                write_private(os.path.join(d, f"espgw-{name}{suffix}.json"),
                              json.dumps(espgw_gateway(role, algo, keys, a.tunnels, b), indent=1))
            write_private(os.path.join(d, f"secgw-{name}.cfg"), secgw_cfg(role, algo, keys, a.tunnels))
        # tshark's view of the same SAs, for checking captures by hand (scripts/decode.sh format).
        sas = [f"192.0.2.1,192.0.2.2,{SPI_G_OUT + t:#010x},{keys[SPI_G_OUT + t]} "
               f"192.0.2.2,192.0.2.1,{SPI_P_OUT + t:#010x},{keys[SPI_P_OUT + t]}" for t in range(a.tunnels)]
        write_private(os.path.join(d, "tunnel.env"), f"SAS='{' '.join(sas)}'\n")
    for role, name in (("g", "encrypt"), ("p", "decrypt")):
        write_private(os.path.join(a.dir, f"espgw-route-{name}.json"), json.dumps(espgw_route(role, a.tunnels), indent=1))


# ---- sampling ----

def port_stats(t: Telemetry, port: int) -> dict:
    return t.query(f"/ethdev/stats,{port}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by bash) is not alive either.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmd_sample(a) -> None:
    meta = json.loads(a.meta)

    def fail(msg: str) -> None:
        print(json.dumps(meta | {"error": msg}))
        sys.exit(1)

    try:
        sample(a, meta, fail)
    except (OSError, ValueError, RuntimeError) as e:  # socket errors and timeouts, bad replies
        fail(f"telemetry: {type(e).__name__}: {e}")


def sample(a, meta: dict, fail) -> None:
    deadline = time.monotonic() + a.startup_timeout
    t = None
    while t is None:
        if not alive(a.pid):
            fail("process exited during start-up")
        try:
            t = Telemetry(a.prefix, timeout=0.5)
        except (TimeoutError, OSError):
            if time.monotonic() > deadline:
                fail(f"no telemetry socket for {a.prefix} after {a.startup_timeout} s")
    # Forwarding starts some time after the socket appears (ports, SAs, link checks).
    while port_stats(t, a.tx_port)["opackets"] == 0:
        if not alive(a.pid):
            fail("process exited before it transmitted anything")
        if time.monotonic() > deadline:
            fail(f"nothing transmitted on port {a.tx_port} after {a.startup_timeout} s")
        time.sleep(0.05)
    time.sleep(a.warmup)

    def snap():
        # The TX counter makes the rate: its query is timed, and its midpoint is the sample's
        # time. The telemetry thread shares a CPU with the rest of the machine; on a busy
        # machine a reply can take long enough to blur the window's edge, so slow samples are
        # taken again, and a run that never gets a quick one fails rather than mislead.
        for _ in range(5):
            t0 = time.monotonic()
            tx = port_stats(t, a.tx_port)
            t1 = time.monotonic()
            if t1 - t0 <= 0.02 * a.window:
                return (t0 + t1) / 2, port_stats(t, a.rx_port), tx
        fail(f"telemetry took {t1 - t0:.2f} s to answer, 5 times (machine overloaded?)")

    s0, rx0, tx0 = snap()
    time.sleep(a.window)
    s1, rx1, tx1 = snap()
    t.close()
    if not alive(a.pid):
        fail("process exited during the measurement window")
    secs = s1 - s0
    pkts = tx1["opackets"] - tx0["opackets"]
    rx = rx1["ipackets"] - rx0["ipackets"]
    if pkts <= 0:
        fail(f"no packets transmitted on port {a.tx_port} during the window")
    r = meta | {
        "seconds": round(secs, 4), "tx_packets": pkts, "rx_packets": rx,
        "rx_bytes": rx1["ibytes"] - rx0["ibytes"],
        "mpps": pkts / secs / 1e6,
        # net_null keeps no byte counter, so Gbps is the cleartext frames (with FCS, without
        # preamble and gap) that went through: packets sent times the mean cleartext frame.
        "gbps": pkts * mean_frame(a.size) * 8 / secs / 1e9,
        # Packets the gateway took from the replay but did not send (dropped inside it).
        "loss": 1 - pkts / rx if rx else 1.0,
        "tx_errors": tx1["oerrors"] - tx0["oerrors"],
    }
    print(json.dumps(r))
    # Progress for the person watching.
    print(f"  {r.get('impl', ''):<16} {r.get('dir', '')} {r.get('algo', '')} {a.size:>5} rep {r.get('rep', '')}: "
          f"{r['mpps']:6.2f} Mpps  loss {r['loss']:.2%}", file=sys.stderr)


# ---- checks ----

def cmd_wait_tx(a) -> None:
    """Waits until the process has sent, on port 1, as many packets as PCAP holds."""
    want = len(read_pcap(a.pcap))
    deadline = time.monotonic() + a.timeout
    t = None
    sent = 0
    while time.monotonic() < deadline and alive(a.pid):
        try:
            t = t or Telemetry(a.prefix, timeout=0.5)
            sent = port_stats(t, 1)["opackets"]
            if sent >= want:
                return
        except (TimeoutError, OSError):
            t = None
        time.sleep(0.1)
    sys.exit(f"wait-tx: {a.prefix} sent {sent} of {want} packets in {a.timeout} s")


def read_pcap(path: str) -> list[bytes]:
    with open(path, "rb") as f:
        data = f.read()
    # Microsecond (pcapgen.py) or nanosecond (DPDK's net_pcap) timestamps, little-endian.
    if len(data) < 24 or struct.unpack("<I", data[:4])[0] not in (0xA1B2C3D4, 0xA1B23C4D):
        sys.exit(f"{path}: not a little-endian pcap")
    out, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack("<I", data[off + 8:off + 12])[0]
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def cmd_compare_esp(a) -> None:
    """Both gateways encrypted the same cleartext pcap with the same SA from sequence number 1.
    The IV is the sequence number in both, so everything from the ESP header on (SPI, sequence,
    IV, ciphertext, ICV) must be identical, and the outer addresses and protocol too. Ethernet
    source, outer IP ID and checksum may differ."""
    x, y = read_pcap(a.a), read_pcap(a.b)
    if len(x) != len(y) or not x:
        sys.exit(f"compare-esp: {len(x)} packets in {a.a}, {len(y)} in {a.b}")
    for i, (p, q) in enumerate(zip(x, y)):
        if p[12:14] != b"\x08\x00" or p[23] != 50:
            sys.exit(f"compare-esp: packet {i + 1} of {a.a} is not IPv4 ESP")
        if (p[:6], p[23], p[26:34], p[34:]) != (q[:6], q[23], q[26:34], q[34:]):
            sys.exit(f"compare-esp: packet {i + 1} differs ({len(p)} and {len(q)} bytes)")
    print(f"{len(x)} ESP packets identical from the ESP header on")


# ---- crypto-perf ----

def esp_payload_len(frame: int) -> int:
    """What AES-GCM encrypts for a frame of FRAME bytes (with FCS) in tunnel mode: the inner IPv4
    packet, padding to 4 bytes and the 2-byte trailer (RFC 4303 2.4; GCM needs no block padding)."""
    inner = frame - FCS - 14
    return (inner + 2 + 3) // 4 * 4


def frames(size: str) -> list[tuple[int, int]]:
    return IMIX if size == "imix" else [(int(size), 1)]


def mean_frame(size: str) -> float:
    fs = frames(size)
    return sum(f * w for f, w in fs) / sum(w for _, w in fs)


def cmd_esp_len(a) -> None:
    for f, _ in frames(a.size):
        print(esp_payload_len(f))


def cmd_cryptoperf(a) -> None:
    # lcore id,Buffer Size(B),Burst Size,Enqueued,Dequeued,Failed Enq,Failed Deq,Ops(Millions),...
    n = 0
    for line in open(a.csv):
        cols = line.strip().split(",")
        if len(cols) >= 8 and cols[0].isdigit() and cols[1].isdigit():
            if int(cols[3]) != int(cols[4]):
                sys.exit(f"crypto-perf: {cols[3]} enqueued but {cols[4]} dequeued: {line.strip()}")
            print(cols[1], cols[7])
            n += 1
    if n == 0:
        sys.exit("crypto-perf: no result lines in its output")


# ---- table ----

def median(xs):
    return statistics.median(xs) if xs else None


def cmd_table(a) -> None:
    rows = [json.loads(line) for line in open(a.results) if line.strip()]
    runs: dict = {}
    errors = []
    for r in rows:
        key = (r["dir"], r["algo"], r["size"], r["impl"])
        if "error" in r:
            errors.append(r)
            continue
        runs.setdefault(key, []).append(r)

    def med(d, al, s, impl, field="mpps"):
        return median([r[field] for r in runs.get((d, al, s, impl), [])])

    def crypto_mops(d, al, s):
        # Per-frame-size medians, combined by weight for IMIX: time per packet is what adds up.
        ns = 0.0
        for f, w in frames(s):
            m = med(d, al, str(esp_payload_len(f)), "crypto-perf")
            if m is None:
                return None
            ns += w * 1e3 / m
        return 1e3 / (ns / sum(w for _, w in frames(s)))

    cases = []
    for r in rows:
        c = (r["dir"], r["algo"], r["size"])
        if r["impl"] in ("espgw", "secgw") and c not in cases:
            cases.append(c)

    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    def ns(mpps):
        return None if not mpps else 1e3 / mpps

    def sub(a_, b_):
        return None if a_ is None or b_ is None else a_ - b_

    out = []
    for d, al, s in cases:
        e, sg = med(d, al, s, "espgw"), med(d, al, s, "secgw")
        cp = crypto_mops(d, al, s)
        route = med(d, "-", s, "route")
        io = med(d, "-", s, "io")
        out.append({
            "dir": d, "algo": al, "size": s,
            "espgw_mpps": e, "espgw_gbps": med(d, al, s, "espgw", "gbps"),
            "secgw_mpps": sg, "secgw_gbps": med(d, al, s, "secgw", "gbps"),
            "ratio": e / sg if e and sg else None,
            # The ratio a gateway would reach if ESP cost it nothing beyond espgw's plain route
            # (the replay included) and crypto-perf's bare AEAD: what the target is set against.
            "bound": (1e3 / sg) / (ns(route) + ns(cp)) if sg and route and cp else None,
            "crypto_mops": cp, "of_crypto": e / cp if e and cp else None,
            "route_mpps": route, "io_mpps": io,
            "espgw_ns_left": sub(ns(e), ns(route)), "secgw_ns_left": sub(ns(sg), ns(route)),
            "crypto_ns": ns(cp),
            "espgw_loss": med(d, al, s, "espgw", "loss"), "secgw_loss": med(d, al, s, "secgw", "loss"),
            "reps": len(runs.get((d, al, s, "espgw"), [])),
            "variants": {impl.split(":", 1)[1]: med(d, al, s, impl)
                         for (d2, al2, s2, impl) in runs if (d2, al2, s2) == (d, al, s) and impl.startswith("espgw:")},
        })

    head = ("| dir | algo | frame | espgw Mpps | espgw Gbps | secgw Mpps | secgw Gbps | espgw/secgw "
            "| bound | espgw/crypto-perf | crypto-perf Mops | route Mpps | io Mpps | espgw ns left "
            "| secgw ns left | crypto ns |")
    lines = [head, "|" + "---|" * 3 + "---:|" * 13]
    for r in out:
        lines.append("| " + " | ".join([
            r["dir"], r["algo"].replace("aes-", "").replace("-gcm", ""), r["size"],
            f(r["espgw_mpps"], ".2f"), f(r["espgw_gbps"], ".2f"), f(r["secgw_mpps"], ".2f"), f(r["secgw_gbps"], ".2f"),
            f(r["ratio"], ".2f"), f(r["bound"], ".2f"), f(r["of_crypto"], ".2f"), f(r["crypto_mops"], ".2f"),
            f(r["route_mpps"], ".2f"), f(r["io_mpps"], ".2f"),
            f(r["espgw_ns_left"], ".1f"), f(r["secgw_ns_left"], ".1f"), f(r["crypto_ns"], ".1f")]) + " |")
    variants = sorted({v for r in out for v in r["variants"]})
    if variants:
        # Each variant (another crypto backend, or a baseline binary) beside espgw's own rate.
        lines += ["", "| dir | algo | frame | espgw Mpps | " + " | ".join(f"espgw {v} Mpps" for v in variants)
                  + " | " + " | ".join(f"espgw / {v}" for v in variants) + " |",
                  "|---|---|---|" + "---:|" * (1 + 2 * len(variants))]
        for r in out:
            e = r["espgw_mpps"]
            vs = [r["variants"].get(v) for v in variants]
            lines.append(f"| {r['dir']} | {r['algo']} | {r['size']} | {f(e, '.2f')} | "
                         + " | ".join(f(x, ".2f") for x in vs) + " | "
                         + " | ".join(f(e / x if e and x else None, ".3f") for x in vs) + " |")
    warn = []
    for r in out:
        for side in ("espgw", "secgw"):
            if r[f"{side}_loss"] is not None and r[f"{side}_loss"] > 0.001:
                warn.append(f"{side} {r['dir']} {r['algo']} {r['size']}: lost {r[f'{side}_loss']:.1%} "
                            "of the packets it received")
    for e in errors:
        warn.append(f"FAILED {e['impl']} {e['dir']} {e['algo']} {e['size']} rep {e.get('rep')}: {e['error']}")
    text = "\n".join(lines + ([""] + [f"- {w}" for w in warn] if warn else []))
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as fh:
            fh.write(text + "\n")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"rows": out, "errors": errors}, fh, indent=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("configs")
    c.add_argument("dir")
    c.add_argument("--tunnels", type=int, default=1)
    c.add_argument("--backends", help="extra espgw configs with dataplane.crypto set, comma-separated")
    s = sub.add_parser("sample")
    s.add_argument("prefix")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--warmup", type=float, default=1.0)
    s.add_argument("--window", type=float, default=3.0)
    s.add_argument("--startup-timeout", type=float, default=20.0)
    s.add_argument("--size", required=True, help="cleartext frame size with FCS, or imix")
    s.add_argument("--meta", default="{}", help="JSON object merged into the output line")
    s.add_argument("--rx-port", type=int, default=0)
    s.add_argument("--tx-port", type=int, default=1)
    e = sub.add_parser("esp-len")
    e.add_argument("size")
    w = sub.add_parser("wait-tx")
    w.add_argument("prefix")
    w.add_argument("--pid", type=int, required=True)
    w.add_argument("--pcap", required=True)
    w.add_argument("--timeout", type=float, default=20.0)
    ce = sub.add_parser("compare-esp")
    ce.add_argument("a")
    ce.add_argument("b")
    cp = sub.add_parser("cryptoperf")
    cp.add_argument("csv")
    t = sub.add_parser("table")
    t.add_argument("results")
    t.add_argument("--markdown")
    t.add_argument("--json")
    a = p.parse_args()
    {"configs": cmd_configs, "sample": cmd_sample, "esp-len": cmd_esp_len,
     "wait-tx": cmd_wait_tx, "compare-esp": cmd_compare_esp, "cryptoperf": cmd_cryptoperf, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
