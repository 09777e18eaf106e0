#!/usr/bin/env python3
"""MQTT fan-out benchmark against a private Eclipse Mosquitto broker.

Copied from shared/bench/mqtt_fanout.py (the peer harness, read-only for this project) for
imagecast's tests/bench, with one addition: --tls runs the broker with a TLS 1.3 listener
and a certificate of the kind imagecast's server makes (ECDSA P-256, self-signed), and the
subscribers and the publisher connect over TLS, trusting exactly that certificate. Without
--tls it measures what the original does.

For every (subscribers N, size S MiB) combination:
  * start a fresh mosquitto on a free 127.0.0.1 port (temp config under /tmp,
    persistence off unless --persistence, message/packet size limits raised);
  * connect N subscribers (MQTT 3.1.1, clean_session=False, QoS 1) spread over
    --procs worker processes, all subscribed to one topic;
  * one publisher (paho-mqtt by default) publishes one S MiB random payload at
    QoS 1; the wall time is measured from just before publish() until the last
    subscriber has received the complete payload (receive timestamps taken with
    CLOCK_MONOTONIC, which is system-wide on Linux, so comparable across
    processes);
  * repeat --rounds times (after --warmup unmeasured rounds), stop the broker.

Output (stdout), one line per combination:
  mqtt_fanout subscribers=N size_mib=S seconds_median=... mib_per_s_aggregate=... [more k=v]
and, per measured round, `mqtt_fanout_round ...` lines.  Diagnostics go to stderr
prefixed with '#'.  mib_per_s_aggregate = N * S / seconds_median.

Subscriber implementations (--client):
  raw  (default) minimal MQTT 3.1.1 client (bench/benchlib.py) that recv_into()s
       the payload straight into a per-connection buffer, many connections per
       process on one epoll loop: ~1 kernel->user copy per byte, little Python.
  paho paho-mqtt clients driven by an external selector loop (loop_read /
       loop_write / loop_misc).  paho copies each payload several times in
       Python, so it saturates a core earlier; use it to see client-library cost.
"""

import argparse
import multiprocessing as mp
import os
import selectors
import signal
import sys
import threading
import time
import zlib
from multiprocessing.connection import wait as mp_wait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402


# --------------------------------------------------------------------------
# subscriber workers (run in child processes)


def _report_closed(conn, idx):
    try:
        conn.send(("closed", idx))
    except OSError:
        pass


def sub_worker_raw(conn, port, ids, topic, cap, keepalive, prefix, auth,
                   full_crc, deadline, tls_ca=None):
    rcs = []
    tls_ctx = bl.client_context(tls_ca) if tls_ca else None
    try:
        for i in ids:
            s = bl.raw_connect(port, "%s-%d" % (prefix, i), keepalive=keepalive,
                               clean_session=False,
                               username=auth[0] if auth else None,
                               password=auth[1] if auth else None,
                               topic=topic, qos=1, tls_ctx=tls_ctx)
            s.setblocking(False)
            rcs.append((i, bl.RawConn(s, cap)))
        conn.send(("ready", len(rcs)))
    except Exception as e:  # report and quit
        conn.send(("error", "connect: %r" % (e,)))
        return
    sel = selectors.DefaultSelector()
    for i, rc in rcs:
        sel.register(rc.sock, selectors.EVENT_READ, (i, rc))
    sel.register(conn, selectors.EVENT_READ, None)
    last_ka = time.monotonic()
    stop = False
    while not stop and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            if key.data is None:
                try:
                    cmd = conn.recv()
                except EOFError:
                    cmd = "stop"
                if cmd == "stop":
                    stop = True
                continue
            i, rc = key.data
            try:
                pkts = rc.feed()
            except OSError:
                pkts = None
            if pkts is None:
                sel.unregister(rc.sock)
                _report_closed(conn, i)
                continue
            for ptype, flags, body, t in pkts:
                if ptype == bl.PUBLISH:
                    _, pid, payload = bl.parse_publish(flags, body)
                    rnd, ok = bl.check_payload(payload, full_crc)
                    n = len(payload)
                    if pid is not None:
                        rc.send(bl.pkt_puback(pid))
                    conn.send(("msg", rnd, i, t, n, ok))
        now = time.monotonic()
        if now - last_ka > 1.0:
            last_ka = now
            for i, rc in rcs:
                if not rc.closed and now - rc.last_send > keepalive / 2:
                    rc.send(bl.PINGREQ_PKT)
    for i, rc in rcs:
        try:
            rc.sock.setblocking(True)
            rc.sock.settimeout(1.0)
            rc.sock.sendall(bl.DISCONNECT_PKT)
            rc.sock.close()
        except OSError:
            pass


def sub_worker_paho(conn, port, ids, topic, cap, keepalive, prefix, auth,
                    full_crc, deadline, tls_ca=None):
    import paho.mqtt.client as mqtt

    clients = []
    state = {}

    def on_connect(client, ud, flags, reason, props):
        state[ud]["connected"] = True

    def on_subscribe(client, ud, mid, reasons, props):
        state[ud]["subscribed"] = True

    def on_message(client, ud, msg):
        t = time.monotonic()
        rnd, ok = bl.check_payload(msg.payload, full_crc)
        conn.send(("msg", rnd, ud, t, len(msg.payload), ok))

    def on_disconnect(client, ud, flags, reason, props):
        if not state[ud].get("stopping"):
            _report_closed(conn, ud)

    try:
        for i in ids:
            state[i] = {"connected": False, "subscribed": False}
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                            client_id="%s-%d" % (prefix, i), clean_session=False,
                            protocol=mqtt.MQTTv311, userdata=i)
            if auth:
                c.username_pw_set(auth[0], auth[1])
            if tls_ca:
                c.tls_set_context(bl.client_context(tls_ca))
            c.on_connect = on_connect
            c.on_subscribe = on_subscribe
            c.on_message = on_message
            c.on_disconnect = on_disconnect
            c.connect(bl.LOOPBACK, port, keepalive=keepalive)
            t_end = time.monotonic() + 10
            while not state[i]["connected"] and time.monotonic() < t_end:
                c.loop(timeout=0.05)
            if not state[i]["connected"]:
                raise RuntimeError("paho connect timeout")
            c.subscribe(topic, qos=1)
            while not state[i]["subscribed"] and time.monotonic() < t_end:
                c.loop(timeout=0.05)
            if not state[i]["subscribed"]:
                raise RuntimeError("paho subscribe timeout")
            clients.append((i, c))
        conn.send(("ready", len(clients)))
    except Exception as e:
        conn.send(("error", "paho connect: %r" % (e,)))
        return

    sel = selectors.DefaultSelector()
    for i, c in clients:
        sel.register(c.socket(), selectors.EVENT_READ, c)
    sel.register(conn, selectors.EVENT_READ, None)
    last_misc = time.monotonic()
    stop = False
    while not stop and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            if key.data is None:
                try:
                    cmd = conn.recv()
                except EOFError:
                    cmd = "stop"
                if cmd == "stop":
                    stop = True
                continue
            key.data.loop_read()
        for i, c in clients:
            if c.want_write():
                c.loop_write()
        now = time.monotonic()
        if now - last_misc > 1.0:
            last_misc = now
            for i, c in clients:
                c.loop_misc()
    for i, c in clients:
        state[i]["stopping"] = True
        try:
            c.disconnect()
            c.loop_write()
        except Exception:
            pass


# --------------------------------------------------------------------------
# publisher


class PahoPublisher:
    def __init__(self, port, auth, keepalive=60, tls_ca=None):
        import paho.mqtt.client as mqtt
        self.mqtt = mqtt
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id="bench-pub-%d" % os.getpid(),
                             clean_session=True, protocol=mqtt.MQTTv311)
        if auth:
            self.c.username_pw_set(auth[0], auth[1])
        if tls_ca:
            self.c.tls_set_context(bl.client_context(tls_ca))
        self.connected = threading.Event()
        self.acked = {}
        self.c.on_connect = lambda *a: self.connected.set()
        self.c.on_publish = self._on_publish
        self.c.connect(bl.LOOPBACK, port, keepalive=keepalive)
        self.c.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError("publisher connect timeout")

    def _on_publish(self, client, ud, mid, reason, props):
        self.acked[mid] = time.monotonic()

    def publish(self, topic, payload):
        info = self.c.publish(topic, payload, qos=1)
        return info.mid

    def wait_ack(self, mid, timeout):
        end = time.monotonic() + timeout
        while mid not in self.acked and time.monotonic() < end:
            time.sleep(0.002)
        return self.acked.get(mid)

    def close(self):
        try:
            self.c.disconnect()
            self.c.loop_stop()
        except Exception:
            pass


class RawPublisher:
    """Blocking-socket publisher: header + payload via sendall, PUBACK read in a thread."""

    def __init__(self, port, auth, keepalive=60, tls_ca=None):
        if tls_ca:
            # One TLS connection must not be read and written from two threads.
            raise RuntimeError("--publisher raw has no TLS; use --publisher paho")
        self.s = bl.raw_connect(port, "bench-pub-%d" % os.getpid(), keepalive=keepalive,
                                clean_session=True,
                                username=auth[0] if auth else None,
                                password=auth[1] if auth else None)
        self.s.settimeout(None)
        self.acked = {}
        self.mid = 0
        self.alive = True
        self.th = threading.Thread(target=self._reader, daemon=True)
        self.th.start()

    def _reader(self):
        self.s.settimeout(1.0)
        buf = bytearray()
        while self.alive:
            try:
                d = self.s.recv(4096)
            except (TimeoutError, OSError):
                continue
            if not d:
                return
            buf += d
            while True:
                h = bl.RawConn._parse_fixed(buf)
                if h is None or len(buf) < h[3] + h[2]:
                    break
                ptype, flags, rl, hl = h
                if ptype == bl.PUBACK:
                    mid = (buf[hl] << 8) | buf[hl + 1]
                    self.acked[mid] = time.monotonic()
                del buf[:hl + rl]

    def publish(self, topic, payload):
        self.mid = self.mid % 65535 + 1
        self.s.sendall(bl.pkt_publish_header(topic, len(payload), 1, self.mid))
        self.s.sendall(payload)
        return self.mid

    def wait_ack(self, mid, timeout):
        end = time.monotonic() + timeout
        while mid not in self.acked and time.monotonic() < end:
            time.sleep(0.002)
        return self.acked.get(mid)

    def close(self):
        self.alive = False
        try:
            self.s.sendall(bl.DISCONNECT_PKT)
            self.s.close()
        except OSError:
            pass


# --------------------------------------------------------------------------


def run_one(args, n_subs, size_mib, versions):
    size = int(round(size_mib * bl.MIB))
    procs = max(1, min(args.procs or n_subs, n_subs))
    topic = "bench/fanout/image"
    auth = ("bench", "bench-secret") if args.auth else None
    cap = size + 4096
    run_deadline = time.monotonic() + args.max_seconds
    tls_ca, tls_pair, cert_dir = None, None, None
    if args.tls:
        import tempfile
        cert_dir = tempfile.mkdtemp(prefix="mqbench-cert-", dir="/tmp")
        tls_pair = bl.make_cert(cert_dir)
        tls_ca = tls_pair[0]
    broker = bl.Broker(persistence=args.persistence, max_payload=size,
                       nofile=n_subs + 1024,
                       username=auth[0] if auth else None,
                       password=auth[1] if auth else None,
                       keep_dir=args.keep, tls=tls_pair)
    workers, conns, pub = [], [], None
    ctx = mp.get_context("fork")
    result = {"ok": 0}
    try:
        broker.start()
        bl.log("broker pid=%d port=%d dir=%s" % (broker.pid, broker.port, broker.dir))
        prefix = "bench-sub-%d-%d" % (os.getpid(), int(time.time()))
        target = sub_worker_paho if args.client == "paho" else sub_worker_raw
        for p in range(procs):
            ids = list(range(p, n_subs, procs))
            a, b = ctx.Pipe(duplex=True)
            w = ctx.Process(target=target, daemon=True,
                            args=(b, broker.port, ids, topic, cap, args.keepalive,
                                  prefix, auth, args.verify_crc, run_deadline, tls_ca))
            w.start()
            b.close()
            workers.append(w)
            conns.append(a)
        ready = 0
        t_end = time.monotonic() + args.connect_timeout
        pending = set(conns)
        while pending and time.monotonic() < t_end:
            for c in mp_wait(list(pending), timeout=max(0.01, t_end - time.monotonic())):
                msg = c.recv()
                if msg[0] == "ready":
                    ready += msg[1]
                    pending.discard(c)
                elif msg[0] == "error":
                    raise RuntimeError("subscriber worker: %s" % msg[1])
        if ready != n_subs:
            raise RuntimeError("only %d/%d subscribers ready" % (ready, n_subs))
        bl.log("%d subscribers connected+subscribed (%s, %d procs)" % (n_subs, args.client, procs))

        pub = (RawPublisher if args.publisher == "raw" else PahoPublisher)(
            broker.port, auth, tls_ca=tls_ca)
        cipher = "none"
        if tls_ca:
            probe = bl.raw_connect(broker.port, "bench-probe-%d" % os.getpid(),
                                   tls_ctx=bl.client_context(tls_ca))
            cipher = "%s/%s" % (probe.version(), probe.cipher()[0])
            probe.close()
        base = os.urandom(size - 2 * bl.HDR_LEN)
        crc = zlib.crc32(base) & 0xFFFFFFFF
        rss_before = broker.rss_kib() or 0
        times, firsts, acks = [], [], []
        bcpu_tot, wcpu_tot, mcpu_tot, wall_tot = 0.0, 0.0, 0.0, 0.0
        sys_busy_tot, sys_wall_tot, pre_busy = 0.0, 0.0, []
        bad = 0
        total_rounds = args.warmup + args.rounds
        for r in range(1, total_rounds + 1):
            if time.monotonic() > run_deadline:
                raise RuntimeError("--max-seconds exceeded")
            measured = r > args.warmup
            payload = bl.make_payload(base, r, crc)
            # drain stragglers from an earlier round (bounded)
            for _ in range(10000):
                rd = mp_wait(conns, timeout=0)
                if not rd:
                    break
                for c in rd:
                    m = c.recv()
                    if m[0] in ("error", "closed"):
                        raise RuntimeError("subscriber problem: %r" % (m,))
            pre_busy.append(bl.quiet_wait(args.quiet_wait, args.quiet_threshold))
            b0 = broker.cpu_seconds()
            w0 = sum(bl.proc_cpu_ns(w.pid) or 0 for w in workers)
            m0 = bl.proc_cpu_ns(os.getpid())
            cw = bl.CpuWindow()
            cw.start()
            t0 = time.monotonic()
            mid = pub.publish(topic, payload)
            got = {}
            t_end = t0 + args.round_timeout
            while len(got) < n_subs:
                left = t_end - time.monotonic()
                if left <= 0:
                    raise RuntimeError("round %d timed out: %d/%d received" % (r, len(got), n_subs))
                for c in mp_wait(conns, timeout=left):
                    m = c.recv()
                    if m[0] == "msg":
                        _, rnd, idx, t, nbytes, ok = m
                        if rnd == r:
                            got[idx] = (t, nbytes, ok)
                    elif m[0] in ("error", "closed"):
                        raise RuntimeError("subscriber problem: %r" % (m,))
            cw.stop()
            b1 = broker.cpu_seconds()
            w1 = sum(bl.proc_cpu_ns(w.pid) or 0 for w in workers)
            m1 = bl.proc_cpu_ns(os.getpid())
            t_last = max(v[0] for v in got.values())
            t_first = min(v[0] for v in got.values())
            nok = sum(1 for v in got.values() if v[2] and v[1] == size)
            t_ack = pub.wait_ack(mid, args.round_timeout)
            dt = t_last - t0
            if nok != n_subs:
                bad += 1
            if measured:
                times.append(dt)
                firsts.append(t_first - t0)
                acks.append((t_ack - t0) if t_ack else float("nan"))
                bcpu_tot += (b1 - b0)
                wcpu_tot += (w1 - w0)
                mcpu_tot += (m1 - m0)
                wall_tot += dt
                sys_busy_tot += cw.busy_s
                sys_wall_tot += cw.wall_s
                bl.emit("mqtt_fanout_round", subscribers=n_subs, size_mib=size_mib,
                        round=r - args.warmup, seconds=dt, first_seconds=t_first - t0,
                        puback_seconds=acks[-1],
                        mib_per_s_aggregate=n_subs * size_mib / dt,
                        pre_busy_cores=pre_busy[-1], complete=nok)
            else:
                bl.log("warmup round %d: %.3fs complete=%d" % (r, dt, nok))
            time.sleep(args.gap)
        med = bl.median(times)
        peak = broker.hwm_kib() or 0
        result = dict(
            subscribers=n_subs, size_mib=size_mib, seconds_median=med,
            mib_per_s_aggregate=n_subs * size_mib / med,
            seconds_min=min(times), seconds_max=max(times),
            first_seconds_median=bl.median(firsts),
            puback_seconds_median=bl.median(acks),
            rounds=len(times), rounds_incomplete=bad,
            broker_cpu_util=bcpu_tot / wall_tot if wall_tot else float("nan"),
            subs_cpu_util=wcpu_tot / wall_tot if wall_tot else float("nan"),
            pub_cpu_util=mcpu_tot / wall_tot if wall_tot else float("nan"),
            sys_busy_cores=sys_busy_tot / sys_wall_tot if sys_wall_tot else float("nan"),
            # /proc/stat has 10 ms resolution: only meaningful over >= 0.5 s
            foreign_cpu_cores=((sys_busy_tot - bcpu_tot - wcpu_tot - mcpu_tot) / sys_wall_tot
                               if sys_wall_tot >= 0.5 else float("nan")),
            pre_round_busy_cores_max=max([x for x in pre_busy if x == x] or [float("nan")]),
            broker_rss_idle_mib=rss_before / 1024.0,
            broker_peak_rss_mib=peak / 1024.0,
            client=args.client, publisher=args.publisher, procs=procs,
            persistence="on" if args.persistence else "off",
            auth="on" if args.auth else "off",
            tls="on" if args.tls else "off", cipher=cipher,
            verify="crc" if args.verify_crc else "hdr+len",
            mosquitto=versions["mosquitto"], paho=versions["paho"],
            ncpu=os.cpu_count(), ok=1 if bad == 0 else 0,
        )
        bl.emit("mqtt_fanout", **result)
        return result
    finally:
        for c in conns:
            try:
                c.send("stop")
            except OSError:
                pass
        if pub is not None:
            pub.close()
        for w in workers:
            w.join(5)
            if w.is_alive():
                w.terminate()
                w.join(2)
        broker.stop()
        if cert_dir:
            import shutil
            shutil.rmtree(cert_dir, ignore_errors=True)


def floats(s):
    return [float(x) if "." in x else int(x) for x in s.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--subscribers", default="10,100",
                    help="comma list of subscriber counts (default 10,100)")
    ap.add_argument("-s", "--size-mib", default="1,5",
                    help="comma list of payload sizes in MiB (default 1,5)")
    ap.add_argument("-r", "--rounds", type=int, default=5, help="measured rounds (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured warm-up rounds (default 1)")
    ap.add_argument("--procs", type=int, default=2,
                    help="subscriber worker processes (default 2; capped at N)")
    ap.add_argument("--client", choices=("raw", "paho"), default="raw",
                    help="subscriber client implementation (default raw)")
    ap.add_argument("--publisher", choices=("paho", "raw"), default="paho",
                    help="publisher implementation (default paho)")
    ap.add_argument("--persistence", action="store_true",
                    help="enable mosquitto persistence (db in the temp dir)")
    ap.add_argument("--auth", action="store_true",
                    help="require username/password (mosquitto_passwd file)")
    ap.add_argument("--verify-crc", action="store_true",
                    help="subscribers CRC32 every payload (costs subscriber CPU); "
                         "default checks length + header/trailer round tag")
    ap.add_argument("--quiet-wait", type=float, default=5.0,
                    help="before each round wait up to this many seconds for the host "
                         "to be idle (other jobs share the cores); 0 disables")
    ap.add_argument("--quiet-threshold", type=float, default=0.3,
                    help="'idle' means fewer busy cores than this (default 0.3)")
    ap.add_argument("--keepalive", type=int, default=60)
    ap.add_argument("--gap", type=float, default=0.3, help="pause between rounds, s")
    ap.add_argument("--round-timeout", type=float, default=120.0)
    ap.add_argument("--connect-timeout", type=float, default=120.0)
    ap.add_argument("--max-seconds", type=float, default=1800.0,
                    help="hard cap on one combination's run time")
    ap.add_argument("--keep", action="store_true", help="keep the broker temp dir")
    ap.add_argument("--tls", action="store_true",
                    help="TLS 1.3 listener with an ECDSA P-256 self-signed certificate "
                         "(the kind imagecast's server makes); every client over TLS")
    args = ap.parse_args()
    if args.rounds < 1 or args.rounds > 1000 or args.warmup < 0 or args.warmup > 100:
        ap.error("rounds must be 1..1000, warmup 0..100")

    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:
        from importlib.metadata import version
        paho_v = version("paho-mqtt")
    except Exception:
        paho_v = "missing"
    versions = {"mosquitto": bl.Broker().version(), "paho": paho_v}
    bl.raise_nofile(4096)
    rc = 0
    for n in floats(args.subscribers):
        for s in floats(args.size_mib):
            try:
                run_one(args, int(n), s, versions)
            except Exception as e:
                rc = 1
                bl.emit("mqtt_fanout", subscribers=int(n), size_mib=s, ok=0,
                        error=repr(e)[:200].replace(" ", "_"))
    return rc


if __name__ == "__main__":
    sys.exit(main())
