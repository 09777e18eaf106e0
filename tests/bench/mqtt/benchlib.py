"""Shared helpers for the peer benchmark harness (stdlib only).

Copied from shared/bench/benchlib.py (the peer harness, read-only for this project) for
imagecast's tests/bench; the only change is TLS: `Broker(tls=(cert, key))` adds a TLS 1.3
listener, `make_cert` makes the same kind of certificate imagecast's server makes (ECDSA
P-256, self-signed, for localhost and 127.0.0.1), `raw_connect(..., tls_ctx=)` dials over
TLS and `RawConn` reads non-blocking TLS sockets.

* Broker: start/stop a private mosquitto on a free 127.0.0.1 port with a
  temporary config under /tmp, and read its RSS / CPU time from /proc.
* A minimal non-blocking MQTT 3.1.1 client codec (RawConn) used where paho's
  per-client Python overhead would dominate (many idle clients, bulk receive).
* Small utilities: proc_cpu_seconds, median, emit (machine-readable lines).

Everything binds/connects to 127.0.0.1 only.
"""

import os
import pwd
import ssl
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# --------------------------------------------------------------------------
# generic helpers


def free_port():
    """Ask the kernel for a free TCP port on 127.0.0.1 (small race, fine here)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return float("nan")
    if n % 2:
        return xs[n // 2]
    return 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def fmt(v):
    if isinstance(v, float):
        if v != v:  # nan
            return "nan"
        if abs(v) >= 100:
            return "%.1f" % v
        if abs(v) >= 1:
            return "%.3f" % v
        return "%.4f" % v
    return str(v)


def emit(prefix, **kv):
    """Print one machine-readable line: `prefix k=v k=v ...` (no spaces in values)."""
    parts = [prefix]
    for k, v in kv.items():
        parts.append("%s=%s" % (k, str(fmt(v)).replace(" ", "_")))
    print(" ".join(parts), flush=True)


def log(msg):
    print("# " + msg, file=sys.stderr, flush=True)


def proc_status_kib(pid, field):
    """VmRSS / VmHWM etc. from /proc/<pid>/status, in KiB (None if gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_seconds(pid):
    """utime+stime of a process (all threads) in seconds, None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    # fields after comm: state(0) ... utime is field 14 overall -> index 11 here
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_cpu_ns(pid):
    """On-CPU time of all threads of a process in seconds, ns resolution
    (sum of /proc/<pid>/task/*/schedstat field 1); None if gone."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def sys_cpu_jiffies():
    """(busy, total) jiffies summed over all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


class CpuWindow:
    """Accumulates system-wide busy CPU over measured windows, so that a result
    line can say how much CPU *other* processes used meanwhile (noisy host)."""

    def __init__(self):
        self.busy_s = 0.0
        self.wall_s = 0.0
        self._b0 = self._t0 = None

    def start(self):
        self._b0 = sys_cpu_jiffies()[0]
        self._t0 = time.monotonic()

    def stop(self):
        b1 = sys_cpu_jiffies()[0]
        self.busy_s += (b1 - self._b0) / CLK_TCK
        self.wall_s += time.monotonic() - self._t0

    def busy_cores(self):
        return self.busy_s / self.wall_s if self.wall_s > 0 else float("nan")


def quiet_wait(max_wait=30.0, threshold=0.3, window=0.5):
    """Wait (at most max_wait s) until the whole machine is using less than
    `threshold` cores over a `window`-second sample.  Returns the last sample."""
    if max_wait <= 0:
        return float("nan")
    deadline = time.monotonic() + max_wait
    busy = float("nan")
    while True:
        b0 = sys_cpu_jiffies()[0]
        time.sleep(window)
        busy = (sys_cpu_jiffies()[0] - b0) / CLK_TCK / window
        if busy < threshold or time.monotonic() >= deadline:
            return busy


def raise_nofile(wanted):
    """`ulimit -n` for this process (and children forked/exec'd afterwards):
    raise the RLIMIT_NOFILE soft limit to >= wanted.  The hard limit is raised
    too when we may (root / CAP_SYS_RESOURCE), up to fs.nr_open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                nr_open = int(f.read())
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, min(wanted, nr_open)))
        except (OSError, ValueError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def meminfo_kib(field):
    """A field of /proc/meminfo in KiB (e.g. 'Slab'), None if absent."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def count_established(port):
    """Number of ESTABLISHED TCP sockets whose local port is `port` (server side)."""
    n = 0
    hexport = ":%04X" % port
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(hexport) and parts[3] == "01":
                        n += 1
        except OSError:
            pass
    return n


# --------------------------------------------------------------------------
# mosquitto broker


class Broker:
    """A private mosquitto instance: 127.0.0.1 listener only, temp config dir."""

    def __init__(self, persistence=False, max_payload=None, nofile=None,
                 username=None, password=None, mosquitto="mosquitto",
                 extra_conf=(), keep_dir=False, tls=None):
        self.tls = tls  # (certfile, keyfile) or None
        self.persistence = persistence
        self.max_payload = max_payload
        self.nofile = nofile
        self.username = username
        self.password = password
        self.mosquitto = shutil.which(mosquitto) or "/usr/sbin/mosquitto"
        self.extra_conf = list(extra_conf)
        self.keep_dir = keep_dir
        self.proc = None
        self.port = None
        self.dir = None

    # -- lifecycle
    def start(self, timeout=15.0):
        self.dir = tempfile.mkdtemp(prefix="mqbench-", dir="/tmp")
        self.port = free_port()
        conf = [
            "# generated by bench/benchlib.py",
            "per_listener_settings false",
            "listener %d %s" % (self.port, LOOPBACK),
            "max_connections -1",
            "persistence %s" % ("true" if self.persistence else "false"),
            "log_dest file %s/mosquitto.log" % self.dir,
            "log_type error",
            "log_type warning",
            "connection_messages false",
            "max_queued_messages 1000",
        ]
        if self.tls:
            # TLS on the one listener, TLS 1.3 only (imagecast's rustls default prefers it).
            certfile, keyfile = self.tls
            for src in (certfile, keyfile):
                shutil.copy(src, self.dir)
            conf += ["certfile %s/%s" % (self.dir, os.path.basename(certfile)),
                     "keyfile %s/%s" % (self.dir, os.path.basename(keyfile)),
                     "tls_version tlsv1.3"]
        if self.persistence:
            conf += ["persistence_location %s/" % self.dir,
                     "autosave_interval 1800"]
        if self.max_payload:
            # payload limit and whole-packet limit, both comfortably above
            # the payload we will send (MQTT hard max is 268435455).
            lim = min(int(self.max_payload) + MIB, 268435455 - 65536)
            conf += ["message_size_limit %d" % lim,
                     "max_packet_size %d" % (lim + 65536)]
        if self.username:
            pwfile = os.path.join(self.dir, "passwd")
            subprocess.run(["mosquitto_passwd", "-b", "-c", pwfile,
                            self.username, self.password],
                           check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
            conf += ["allow_anonymous false", "password_file %s" % pwfile]
        else:
            conf += ["allow_anonymous true"]
        conf += self.extra_conf
        if os.geteuid() == 0:
            # mosquitto drops root privileges; let its user use the temp dir
            try:
                pw = pwd.getpwnam("mosquitto")
                conf.append("user mosquitto")
                for root, dirs, files in os.walk(self.dir):
                    os.chown(root, pw.pw_uid, pw.pw_gid)
                    for fn in files:
                        os.chown(os.path.join(root, fn), pw.pw_uid, pw.pw_gid)
            except KeyError:
                conf.append("user root")
        self.conf_path = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("mosquitto")
                os.chown(self.conf_path, pw.pw_uid, pw.pw_gid)
            except KeyError:
                pass

        nofile = self.nofile

        def pre():
            # equivalent of `ulimit -n` for the broker subprocess only
            if nofile:
                raise_nofile(nofile)

        self.proc = subprocess.Popen([self.mosquitto, "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "w"),
                                     preexec_fn=pre, close_fds=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited early rc=%s: %s" %
                                   (self.proc.returncode, self.tail_logs()))
            try:
                s = socket.create_connection((LOOPBACK, self.port), timeout=0.5)
                s.close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("mosquitto did not start listening within %.0fs" % timeout)

    def tail_logs(self, n=2000):
        out = []
        for fn in ("stderr.log", "mosquitto.log"):
            p = os.path.join(self.dir or "/nonexistent", fn)
            try:
                with open(p) as f:
                    out.append("%s: %s" % (fn, f.read()[-n:]))
            except OSError:
                pass
        return " | ".join(out)

    def stop(self, timeout=10.0):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.dir and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    # -- measurements
    @property
    def pid(self):
        return self.proc.pid

    def rss_kib(self):
        return proc_status_kib(self.proc.pid, "VmRSS")

    def hwm_kib(self):
        return proc_status_kib(self.proc.pid, "VmHWM")

    def cpu_seconds(self):
        return proc_cpu_ns(self.proc.pid)

    def version(self):
        try:
            out = subprocess.run([self.mosquitto, "-h"], capture_output=True,
                                 text=True, timeout=10).stdout
            return out.split("\n", 1)[0].split()[-1]
        except Exception:
            return "unknown"


# --------------------------------------------------------------------------
# minimal MQTT 3.1.1 codec

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 12, 13, 14


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return struct.pack(">H", len(s)) + s


def pkt_connect(client_id, keepalive=30, clean_session=False,
                username=None, password=None):
    flags = 0x02 if clean_session else 0x00
    payload = _str(client_id)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
    var = _str("MQTT") + bytes([4, flags]) + struct.pack(">H", keepalive)
    body = var + payload
    return bytes([CONNECT << 4]) + _varint(len(body)) + body


def pkt_subscribe(packet_id, topic, qos=1):
    body = struct.pack(">H", packet_id) + _str(topic) + bytes([qos])
    return bytes([(SUBSCRIBE << 4) | 0x02]) + _varint(len(body)) + body


def pkt_publish_header(topic, payload_len, qos=1, packet_id=1):
    var = _str(topic) + (struct.pack(">H", packet_id) if qos else b"")
    return (bytes([(PUBLISH << 4) | (qos << 1)]) +
            _varint(len(var) + payload_len) + var)


def pkt_puback(packet_id):
    return bytes([PUBACK << 4, 2]) + struct.pack(">H", packet_id)


PINGREQ_PKT = bytes([PINGREQ << 4, 0])
DISCONNECT_PKT = bytes([DISCONNECT << 4, 0])


class RawConn:
    """Non-blocking incremental MQTT packet reader for one socket.

    Large packets (> SMALL) are received with recv_into() straight into a
    per-connection preallocated buffer: one kernel->user copy per byte, no
    Python-level concatenation.  feed() returns completed packets as
    (ptype, flags, body, t_done) where body is bytes (small packets) or a
    memoryview into the big buffer (valid until the next feed()).
    """

    SMALL = 65536

    def __init__(self, sock, big_capacity=0):
        self.sock = sock
        self.small = bytearray()
        self.big = bytearray(big_capacity) if big_capacity else None
        self.bigmv = memoryview(self.big) if big_capacity else None
        self.in_big = False
        self.big_len = 0
        self.big_pos = 0
        self.big_hdr = (0, 0)
        self.last_send = time.monotonic()
        self.closed = False

    def send(self, data, timeout=5.0):
        """Send a small control packet; falls back to a bounded wait."""
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            try:
                n = self.sock.send(view)
                view = view[n:]
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                if time.monotonic() > deadline:
                    raise TimeoutError("send timed out")
                time.sleep(0.001)
        self.last_send = time.monotonic()

    @staticmethod
    def _parse_fixed(buf):
        """Return (ptype, flags, remaining_len, header_len) or None if incomplete."""
        if len(buf) < 2:
            return None
        mult, rl = 1, 0
        for i in range(1, 5):
            if i >= len(buf):
                return None
            b = buf[i]
            rl += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                return buf[0] >> 4, buf[0] & 0x0F, rl, i + 1
        raise ValueError("malformed remaining length")

    def feed(self):
        """Read what is available; return list of completed packets.
        Returns None on EOF."""
        if not isinstance(self.sock, ssl.SSLSocket):
            return self._feed_once()
        # A TLS socket hands out one record per call and may hold decrypted bytes the
        # selector cannot see: read until it would block.
        out = []
        for _ in range(100000):
            try:
                got = self._feed_once()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return out
            if got is None:
                return out or None  # the end shows again at the next select
            out += got
        return out

    def _feed_once(self):
        out = []
        if self.in_big:
            try:
                n = self.sock.recv_into(self.bigmv[self.big_pos:self.big_len])
            except BlockingIOError:
                return out
            if n == 0:
                self.closed = True
                return None
            self.big_pos += n
            if self.big_pos == self.big_len:
                t = time.monotonic()
                self.in_big = False
                out.append((self.big_hdr[0], self.big_hdr[1],
                            self.bigmv[:self.big_len], t))
            return out
        try:
            data = self.sock.recv(self.SMALL)
        except BlockingIOError:
            return out
        if not data:
            self.closed = True
            return None
        self.small += data
        while True:
            h = self._parse_fixed(self.small)
            if h is None:
                break
            ptype, flags, rl, hl = h
            if len(self.small) >= hl + rl:
                t = time.monotonic()
                body = bytes(self.small[hl:hl + rl])
                del self.small[:hl + rl]
                out.append((ptype, flags, body, t))
                continue
            if rl > self.SMALL:
                if self.big is None or len(self.big) < rl:
                    self.big = bytearray(rl)
                    self.bigmv = memoryview(self.big)
                avail = len(self.small) - hl
                self.bigmv[:avail] = self.small[hl:]
                self.small = bytearray()
                self.in_big = True
                self.big_len = rl
                self.big_pos = avail
                self.big_hdr = (ptype, flags)
            break
        return out


def parse_publish(flags, body):
    """-> (topic bytes, packet_id or None, payload memoryview)"""
    mv = memoryview(body)
    tl = (mv[0] << 8) | mv[1]
    topic = bytes(mv[2:2 + tl])
    off = 2 + tl
    qos = (flags >> 1) & 3
    pid = None
    if qos:
        pid = (mv[off] << 8) | mv[off + 1]
        off += 2
    return topic, pid, mv[off:]


def blocking_handshake(sock, pkt, expect_type, timeout=10.0):
    """Send pkt on a blocking socket and read exactly one reply packet."""
    sock.settimeout(timeout)
    sock.sendall(pkt)
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = RawConn._parse_fixed(buf)
        if h is not None and len(buf) >= h[3] + h[2]:
            ptype, flags, rl, hl = h
            if ptype != expect_type:
                raise RuntimeError("expected packet type %d got %d" % (expect_type, ptype))
            body = bytes(buf[hl:hl + rl])
            if len(buf) > hl + rl:
                raise RuntimeError("unexpected extra data after handshake packet")
            return body
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("broker closed connection")
        buf += chunk
    raise TimeoutError("handshake timed out")


def make_cert(folder):
    """A key and a self-signed certificate of the kind imagecast's server makes (rcgen's
    default: ECDSA P-256, for localhost and 127.0.0.1) in `folder`; -> (cert, key)."""
    cert, key = os.path.join(folder, "server.crt"), os.path.join(folder, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=rcgen self signed cert",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=30)
    os.chmod(key, 0o644)  # the broker drops root for the mosquitto user
    return cert, key


def client_context(cafile):
    """A TLS 1.3 client context that trusts exactly `cafile`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(cafile)
    return ctx


def raw_connect(port, client_id, keepalive=30, clean_session=False,
                username=None, password=None, topic=None, qos=1,
                timeout=10.0, rcvbuf=None, tls_ctx=None):
    """Blocking TCP connect + CONNECT/CONNACK (+ SUBSCRIBE/SUBACK); returns socket."""
    s = socket.create_connection((LOOPBACK, port), timeout=timeout)
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname=LOOPBACK)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        body = blocking_handshake(s, pkt_connect(client_id, keepalive, clean_session,
                                                 username, password), CONNACK, timeout)
        if len(body) != 2 or body[1] != 0:
            raise RuntimeError("CONNACK refused: %r" % body)
        if topic is not None:
            body = blocking_handshake(s, pkt_subscribe(1, topic, qos), SUBACK, timeout)
            if body[-1] == 0x80:
                raise RuntimeError("SUBACK failure")
        return s
    except Exception:
        s.close()
        raise


# --------------------------------------------------------------------------
# payload framing used by the fan-out benchmark

PAYLOAD_MAGIC = b"FANO"
HDR = struct.Struct(">4sIIIQ")  # magic, round, crc32(body), reserved, total_len
HDR_LEN = HDR.size  # 24


def make_payload(base, rnd, crc):
    """Header + random body + trailer(=header); total len == len(base)+2*HDR_LEN."""
    total = len(base) + 2 * HDR_LEN
    h = HDR.pack(PAYLOAD_MAGIC, rnd, crc, 0, total)
    return b"".join((h, base, h))


def check_payload(payload, full_crc=False):
    """-> (round or -1, ok)"""
    import zlib
    n = len(payload)
    if n < 2 * HDR_LEN:
        return -1, False
    h = bytes(payload[:HDR_LEN])
    magic, rnd, crc, _, total = HDR.unpack(h)
    ok = magic == PAYLOAD_MAGIC and total == n and bytes(payload[n - HDR_LEN:]) == h
    if ok and full_crc:
        ok = (zlib.crc32(payload[HDR_LEN:n - HDR_LEN]) & 0xFFFFFFFF) == crc
    return rnd, ok
