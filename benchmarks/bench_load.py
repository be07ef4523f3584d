"""Load benchmark of the web API: N concurrent clients for T seconds against a running server.

    python benchmarks/bench_load.py                       # 50 clients, 60 s, starts its own server
    python benchmarks/bench_load.py --clients 10 --duration 10 --engine stub
    python benchmarks/bench_load.py --url http://127.0.0.1:8000   # an already running server

Each client loops: create a job (multipart upload + built-in style), poll it until it ends,
fetch the result (checks it is a PNG); or, with ``--mode sync``/``mixed``, call the synchronous
endpoint. A 429 is counted and the client waits for Retry-After. When the time is up no new
request starts, but every accepted job is followed to its end (``--drain`` seconds at most), so
"dropped" counts accepted jobs that never produced a result.

Engines (when this script starts the server): ``real`` = the library's fast AdaIN stylizer
(needs the built-in model), ``stub`` = a stand-in that sleeps ``--stub-seconds`` per image and
does a little tensor work, to load the server machinery when the real model is too slow or
absent. ``auto`` picks real when the model is there. The engine used is printed.

Loopback only: the script refuses any other host. Prints completed, 429s, 5xx, other errors,
dropped, p50/p95 latency (submit to result bytes), throughput, and the server's peak memory.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import ipaddress
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from urllib.parse import urlsplit

MAX_CLIENTS = 500
MAX_DURATION = 600.0


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _photo_png(side: int) -> bytes:
    import numpy as np
    from PIL import Image

    h, w = side * 3 // 4, side
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    img = np.stack([0.4 + 0.4 * y / h, 0.5 + 0.3 * np.sin(x / 17), 0.9 - 0.4 * y / h], -1)
    img += rng.normal(0, 0.04, img.shape)
    buf = io.BytesIO()
    Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(buf, "PNG")
    return buf.getvalue()


# --- the server side (run in a child process) ------------------------------------------------
class StubEngine:
    def __init__(self, seconds: float):
        self.seconds = seconds

    def modes(self):
        return {"fast": True, "best": True}

    def run(self, task, progress):
        import torch
        import torch.nn.functional as F

        steps = 4
        for i in range(steps):
            progress(i / steps)
            time.sleep(self.seconds / steps)
        blurred = F.avg_pool2d(task.content, 5, 1, 2, count_include_pad=False)
        tint = task.styles[0].mean(dim=(2, 3), keepdim=True)
        return (0.6 * blurred + 0.4 * tint).clamp(0, 1).to(torch.float32)


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from painterly.web import Settings, create_app
    from painterly.web.engine import LibraryEngine

    engine = (StubEngine(args.stub_seconds) if args.engine == "stub"
              else LibraryEngine(device="cpu", fast_model=args.fast_model))
    settings = Settings(workers=args.workers, max_queue=args.queue_limit, result_ttl=300)
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // settings.workers))
    app = create_app(settings, engine)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", limit_concurrency=2000,
                backlog=4096, timeout_keep_alive=30)


# --- the client side ---------------------------------------------------------------------------
class Stats:
    def __init__(self):
        self.latencies: list[float] = []
        self.completed = 0
        self.accepted = 0
        self.rejected_429 = 0
        self.server_errors = 0
        self.other_errors = 0
        self.dropped = 0
        self.requests = 0
        self.error_samples: list[str] = []

    def error(self, kind: str, text: str) -> None:
        if kind == "5xx":
            self.server_errors += 1
        else:
            self.other_errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:200])


async def client_loop(client, base: str, photo: bytes, styles: list[str], mode: str, deadline: float,
                      drain_deadline: float, stats: Stats, rng: random.Random) -> None:
    import httpx

    while time.monotonic() < deadline:
        sync = mode == "sync" or (mode == "mixed" and rng.random() < 0.3)
        style = rng.choice(styles)
        data = {"style": style}
        t0 = time.monotonic()
        path = "/api/v1/stylize" if sync else "/api/v1/jobs"
        try:
            stats.requests += 1
            r = await client.post(base + path, files={"content": ("photo.png", photo, "image/png")}, data=data)
        except httpx.HTTPError as exc:
            stats.error("transport", f"POST {path}: {type(exc).__name__} {exc}")
            await asyncio.sleep(0.5)
            continue
        if r.status_code == 429:
            stats.rejected_429 += 1
            wait = float(r.headers.get("retry-after", "1"))
            await asyncio.sleep(min(wait * (0.5 + rng.random()), max(0.0, deadline - time.monotonic())))
            continue
        if r.status_code >= 500:
            stats.error("5xx", f"POST {path}: {r.status_code} {r.text}")
            continue
        if sync and r.status_code == 202:  # slower than the server's sync limit: poll it like a job
            sync = False
        if sync:
            if r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n":
                stats.accepted += 1
                stats.completed += 1
                stats.latencies.append(time.monotonic() - t0)
            else:
                stats.error("other", f"POST {path}: {r.status_code} {r.text[:100]}")
            continue
        if r.status_code != 202:
            stats.error("other", f"POST {path}: {r.status_code} {r.text[:100]}")
            continue
        stats.accepted += 1
        job_id = r.json()["id"]
        ok = await follow_job(client, base, job_id, drain_deadline, stats)
        if ok:
            stats.completed += 1
            stats.latencies.append(time.monotonic() - t0)
        else:
            stats.dropped += 1


async def follow_job(client, base: str, job_id: str, drain_deadline: float, stats: Stats) -> bool:
    import httpx

    delay = 0.1
    while time.monotonic() < drain_deadline:
        try:
            stats.requests += 1
            r = await client.get(f"{base}/api/v1/jobs/{job_id}")
        except httpx.HTTPError as exc:
            stats.error("transport", f"GET status: {type(exc).__name__} {exc}")
            await asyncio.sleep(0.5)
            continue
        if r.status_code >= 500:
            stats.error("5xx", f"GET status: {r.status_code} {r.text}")
            await asyncio.sleep(0.5)
            continue
        if r.status_code != 200:
            stats.error("other", f"GET status: {r.status_code} {r.text[:100]}")
            return False
        status = r.json()["status"]
        if status == "succeeded":
            try:
                stats.requests += 1
                res = await client.get(f"{base}/api/v1/jobs/{job_id}/result")
            except httpx.HTTPError as exc:
                stats.error("transport", f"GET result: {type(exc).__name__} {exc}")
                return False
            if res.status_code >= 500:
                stats.error("5xx", f"GET result: {res.status_code}")
                return False
            return res.status_code == 200 and res.content[:8] == b"\x89PNG\r\n\x1a\n"
        if status in ("failed", "cancelled"):
            stats.error("other", f"job {status}: {r.json().get('error')}")
            return False
        await asyncio.sleep(delay)
        delay = min(0.5, delay * 1.3)
    return False


async def run_clients(args, base: str) -> Stats:
    import httpx

    photo = _photo_png(args.image_size)
    limits = httpx.Limits(max_connections=args.clients + 10, max_keepalive_connections=args.clients + 10)
    headers = {"X-API-Key": args.api_key} if args.api_key else {}
    async with httpx.AsyncClient(timeout=httpx.Timeout(args.drain + 30, connect=10), limits=limits,
                                 headers=headers) as client:
        styles = [s["name"] for s in (await client.get(base + "/api/v1/styles")).json()]
        stats = Stats()
        start = time.monotonic()
        deadline = start + args.duration
        drain_deadline = deadline + args.drain
        rngs = [random.Random(i) for i in range(args.clients)]
        await asyncio.gather(*(client_loop(client, base, photo, styles, args.mode, deadline, drain_deadline,
                                           stats, rngs[i]) for i in range(args.clients)))
        stats.wall = time.monotonic() - start
        try:
            stats.health = (await client.get(base + "/api/v1/health")).json()
        except Exception:
            stats.health = {}
    return stats


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[k]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=50, help=f"concurrent clients (1..{MAX_CLIENTS}, default 50)")
    p.add_argument("--duration", type=float, default=60.0, help=f"seconds of load (max {MAX_DURATION:.0f}, default 60)")
    p.add_argument("--drain", type=float, default=120.0, help="seconds to wait for accepted jobs after the load ends")
    p.add_argument("--url", default=None, help="a running server (loopback only); default: start one here")
    p.add_argument("--api-key", default=os.environ.get("PAINTERLY_API_KEY"))
    p.add_argument("--mode", choices=["jobs", "sync", "mixed"], default="mixed",
                   help="jobs = create + poll + fetch; sync = POST /stylize; mixed = 70/30 (default)")
    p.add_argument("--engine", choices=["auto", "real", "stub"], default="auto",
                   help="stylizer of the server started here (default auto: real fast model if installed)")
    p.add_argument("--fast-model", default=None, metavar="FILE",
                   help="decoder model.safetensors for the real engine (default: the built-in model)")
    p.add_argument("--stub-seconds", type=float, default=0.25, help="seconds per image of the stub engine")
    p.add_argument("--workers", type=int, default=None, help="server worker threads (default: the server's default)")
    p.add_argument("--queue-limit", type=int, default=32, help="server queue limit (default 32)")
    p.add_argument("--image-size", type=int, default=256, help="side of the uploaded test photo (default 256)")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.serve:
        serve(args)
        return 0
    if not 1 <= args.clients <= MAX_CLIENTS:
        p.error(f"--clients must be 1..{MAX_CLIENTS}")
    if not 0 < args.duration <= MAX_DURATION:
        p.error(f"--duration must be in (0, {MAX_DURATION:.0f}]")

    server = None
    engine_label = "external server"
    if args.url:
        if not _loopback(args.url):
            p.error("--url must be a loopback address (127.0.0.1, ::1 or localhost)")
        base = args.url.rstrip("/")
    else:
        engine = args.engine
        if engine == "auto":
            try:
                from painterly.stylizers.fast import default_model_available
                engine = "real" if default_model_available() or args.fast_model else "stub"
            except ImportError:
                engine = "stub"
        if engine == "real" and args.fast_model:
            if not os.path.isfile(args.fast_model):
                p.error(f"--fast-model {args.fast_model}: no such file")
        elif engine == "real":
            try:
                from painterly.stylizers.fast import default_model_available
                if not default_model_available():
                    p.error("--engine real needs the built-in fast model, which is not installed")
            except ImportError:
                p.error("--engine real needs painterly.stylizers.fast")
        engine_label = (f"stub ({args.stub_seconds:.2f} s per image, simulated)" if engine == "stub"
                        else f"real fast AdaIN model (CPU{', ' + args.fast_model if args.fast_model else ''})")
        from painterly.web.config import default_workers
        workers = args.workers or default_workers()
        port = _free_port()
        cmd = [sys.executable, os.path.abspath(__file__), "--serve", "--port", str(port), "--engine", engine,
               "--stub-seconds", str(args.stub_seconds), "--workers", str(workers),
               "--queue-limit", str(args.queue_limit)] + (["--fast-model", args.fast_model] if args.fast_model else [])
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        import httpx
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(base + "/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.time() > deadline:
                print("server did not start:\n" + (server.stderr.read() if server.stderr else ""), file=sys.stderr)
                return 1
            time.sleep(0.2)
        # Warm up (loads the model once) so the first clients do not measure start-up.
        httpx.post(base + "/api/v1/stylize", files={"content": ("w.png", _photo_png(args.image_size), "image/png")},
                   data={"style": "swirls"}, timeout=120)

    print(f"load: {args.clients} clients, {args.duration:.0f} s, mode {args.mode}, engine: {engine_label}, "
          f"photo {args.image_size}px, server {base}", flush=True)
    try:
        stats = asyncio.run(run_clients(args, base))
    finally:
        peak = _peak_rss_mb(server.pid) if server else None
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    if peak is None:
        peak = (getattr(stats, "health", {}) or {}).get("peak_rss_mb")
    lat = stats.latencies
    q = (getattr(stats, "health", {}) or {}).get("queue", {})
    print(f"requests       {stats.requests}")
    print(f"jobs accepted  {stats.accepted}")
    print(f"completed      {stats.completed}  ({stats.completed / stats.wall:.2f}/s over {stats.wall:.1f} s)")
    print(f"429s           {stats.rejected_429}")
    print(f"5xx            {stats.server_errors}")
    print(f"other errors   {stats.other_errors}")
    print(f"dropped        {stats.dropped}  (accepted but no result)")
    print(f"latency p50    {_pct(lat, 0.50):.2f} s")
    print(f"latency p95    {_pct(lat, 0.95):.2f} s")
    print(f"server jobs    succeeded {q.get('succeeded')} failed {q.get('failed')} rejected {q.get('rejected')}")
    print(f"server peak memory {peak:.0f} MB" if peak else "server peak memory unknown")
    for sample in stats.error_samples:
        print(f"  error sample: {sample}")
    ok = stats.server_errors == 0 and stats.dropped == 0
    print(f"RESULT clients {args.clients} duration {args.duration:.0f} completed {stats.completed} "
          f"429 {stats.rejected_429} 5xx {stats.server_errors} errors {stats.other_errors} dropped {stats.dropped} "
          f"p50 {_pct(lat, 0.5):.2f} p95 {_pct(lat, 0.95):.2f} peak_mb {peak or float('nan'):.0f} "
          f"engine {'stub' if engine_label.startswith('stub') else 'real' if engine_label.startswith('real') else 'external'} "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
