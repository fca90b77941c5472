"""Measure the stack's speed and print the figures.

    make bench            (or: .venv/bin/python bench/bench.py [--only NAME ...])

1. image:      the app image's size above its base image
2. start:      web container start until $PORT answers
3. up:         warm `make up` (images and volume exist) until it returns, web serving
4. reload:     after `make up`, a saved change to a view until web serves it (live reload)
5. throughput: authenticated GET /locations, the app vs bench/baseline_wsgi.py,
               and vs the app with plain SQLAlchemy habits (bench/plain_db.py),
               same gunicorn settings, measured side by side with wrk
6. router:     the same request through the stack's router and straight to the
               web dyno, in one `make up` stack: median latency added, throughput
7. idle:       the CPU a stack takes while nothing is asked of it, after `make up`
8. test:       the whole `make test`, images built

Uses POSTGRES_IMAGE and PYTHON_IMAGE like the tests (official images by default).
Everything listens on 127.0.0.1 and is removed at the end.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.docker import (  # noqa: E402
    build_app_image,
    copy_project,
    docker,
    free_port,
    network,
    postgres_on,
    unique,
)
from devtools.http import http_json, http_status, wait_for  # noqa: E402
from devtools.postgres import running_postgres  # noqa: E402
from devtools.project import DYNO_PORT, postgres_image, python_image  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def answers(url: str) -> bool:
    return http_status(url) == 200


def serves_edit(url: str, edit: int) -> bool:
    return bool(http_json(url)[1].get("edit") == edit)


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def bench_image(image: str) -> dict[str, float]:
    base = python_image()
    sizes = [int(docker("image", "inspect", "-f", "{{.Size}}", name).stdout) for name in (image, base)]
    delta = (sizes[0] - sizes[1]) / 1e6
    say(f"image: {sizes[0] / 1e6:.1f} MB, base {base} {sizes[1] / 1e6:.1f} MB, delta {delta:.1f} MB (goal <= 40)")
    return {"image_delta_mb": round(delta, 1)}


def bench_start(image: str, trials: int = 5) -> dict[str, float]:
    """Time `docker start` of a created web container until $PORT answers /healthz."""
    times = []
    with network() as net, postgres_on(net, postgres_image()) as db:
        config = ["-e", f"DATABASE_URL=postgres://app:secret@{db}:5432/app", "-e", "SECRET_KEY=bench"]
        docker("run", "--rm", "--network", net, *config, image, "bin/proc", "release")
        for _ in range(trials):
            name, port = unique("bweb"), free_port()
            docker(
                "create", "--name", name, "--network", net, *config, "-e", "PORT=7000",
                "-p", f"127.0.0.1:{port}:7000", image,
            )  # fmt: skip
            try:
                started = time.monotonic()
                docker("start", name)
                wait_for(functools.partial(answers, f"http://127.0.0.1:{port}/healthz"), 30, 0.01)
                times.append(time.monotonic() - started)
            finally:
                docker("rm", "-f", name, check=False)
    say(f"start: container start to $PORT answering: median {statistics.median(times):.2f} s, "
        f"max {max(times):.2f} s over {trials} starts (goal <= 1 s)")  # fmt: skip
    return {"start_median_s": round(statistics.median(times), 2), "start_max_s": round(max(times), 2)}


class ProjectCopy:
    """A private copy of the project with its own Compose project and ports, driven through make."""

    def __init__(self, directory: Path, image: str, **env: str) -> None:
        self.directory = copy_project(directory / "project")
        self.port = free_port()
        self.env = {**os.environ, "COMPOSE_PROJECT_NAME": unique("bench"), "APP_IMAGE": image,
                    "WEB_PORT": str(self.port), "WEB_TLS_PORT": str(free_port()),
                    "WEB_DIRECT_PORT": str(free_port()), "DB_PORT": str(free_port()), **env}  # fmt: skip
        self.env.pop("SECRET_KEY", None)

    def make(self, target: str) -> float:
        """Run `make target`; return the seconds it took, or stop the bench with its output."""
        started = time.monotonic()
        result = subprocess.run(["make", target], cwd=self.directory, env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"make {target} failed:\n{result.stdout}\n{result.stderr}")
        return time.monotonic() - started

    def restart(self, service: str, url: str) -> None:
        """Restart ``service`` (``docker compose restart``) and wait until ``url`` answers 200 again."""
        subprocess.run(["docker", "compose", "restart", service], cwd=self.directory, env=self.env,
                       capture_output=True, check=True)  # fmt: skip
        wait_for(functools.partial(answers, url), 30, 0.05)

    def remove(self) -> None:
        subprocess.run(["make", "down"], cwd=self.directory, env=self.env, capture_output=True)
        subprocess.run(["docker", "compose", "down", "-v"], cwd=self.directory, env=self.env, capture_output=True)


@contextmanager
def project_copy(image: str, **env: str) -> Iterator[ProjectCopy]:
    """Yield a ProjectCopy in a temporary directory; its stack and volumes are removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = ProjectCopy(Path(tmp), image, **env)
        try:
            yield copy
        finally:
            copy.remove()


def bench_up(image: str, trials: int = 3) -> dict[str, float]:
    """Time warm `make up` in a private copy of the project (images and volume exist)."""
    times = []
    with project_copy(image) as copy:
        say(f"up: first make up (creates the volume): {copy.make('up'):.1f} s")
        for _ in range(trials):
            copy.make("down")
            times.append(copy.make("up"))
    say(f"up: warm make up, until web serves through the router: {', '.join(f'{t:.1f}' for t in times)} s, "
        f"median {statistics.median(times):.1f} s (goal <= 4 s)")  # fmt: skip
    return {"warm_up_median_s": round(statistics.median(times), 1), "warm_up_max_s": round(max(times), 1)}


def bench_reload(image: str, edits: int = 7) -> dict[str, float]:
    """Time save -> served: edit a view in a project copy after `make up`, poll until web answers with the edit."""
    times = []
    with project_copy(image) as copy:
        view = copy.directory / "app" / "health.py"
        original = view.read_text()
        copy.make("up")
        url = f"http://127.0.0.1:{copy.port}/healthz"
        for edit in range(edits):
            view.write_text(original.replace('return {"status": "ok"}', f'return {{"status": "ok", "edit": {edit}}}'))
            started = time.monotonic()
            wait_for(functools.partial(serves_edit, url, edit), 30, 0.01)
            times.append(time.monotonic() - started)
            time.sleep(1)
    say(f"reload: save -> served: {', '.join(f'{t:.2f}' for t in times)} s, "
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s (goal <= 1 s)")  # fmt: skip
    return {"reload_median_s": round(statistics.median(times), 2), "reload_max_s": round(max(times), 2)}


def wrk(url: str, token: str, seconds: int, connections: int) -> tuple[float, float]:
    """Return (requests/s, median latency in ms) of wrk against ``url``."""
    threads = f"-t{min(2, connections)}"  # wrk needs a connection per thread
    result = subprocess.run(
        ["wrk", threads, f"-c{connections}", f"-d{seconds}s", "--latency", "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    if re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout):
        raise SystemExit(f"wrk saw error responses from {url}:\n{result.stdout}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    median = re.search(r"50%\s+([\d.]+)(us|ms|s)", result.stdout)
    if not rps or not median:
        raise SystemExit(f"wrk's output has no rate or median latency:\n{result.stdout}")
    value, unit = median.groups()
    return float(rps.group(1)), float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def seed_locations(app_url: str, count: int) -> str:
    """Create an account with ``count`` locations, every fourth a favourite; return its token."""
    account = {"email": "bench@example.com", "password": "benchmark"}
    token: str = http_json(f"{app_url}/accounts", "POST", account, expect=201)[1]["token"]
    for i in range(count):
        place = {"name": f"Place {i}", "latitude": i, "longitude": -i, "zoomlevel": i % 23}
        saved = http_json(f"{app_url}/locations", "POST", place, token, expect=201)[1]
        if i % 4 == 0:
            http_json(f"{app_url}/locations/{saved['id']}/favorite", "PUT", token=token, expect=204)
    return token


DIRECT = f"""services:
  web:
    ports:
      - "127.0.0.1:${{BENCH_DIRECT_PORT}}:{DYNO_PORT}"
"""


def cpu_seconds_by_process() -> defaultdict[str, float]:
    """Return the CPU time (user and system) each running program has used so far, from /proc (Linux)."""
    used: defaultdict[str, float] = defaultdict(float)
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # it ended meanwhile
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        used[name] += (int(fields[11]) + int(fields[12])) / tick
    return used


# Where a request's CPU goes, by the programs that spend it.
CPU_PARTS = {
    "HAProxy": ("haproxy",),
    "Docker's log pipeline": ("dockerd", "containerd-shim", "containerd"),
    "docker-proxy (published ports)": ("docker-proxy",),
    "gunicorn": ("gunicorn",),
    "Postgres": ("postgres",),
}


def say_cpu_per_request(seconds: dict[str, dict[str, float]]) -> None:
    """Print the CPU each part spent per request, each way (where /proc shows the containers' processes)."""
    if not any(seconds.values()):
        return  # Docker Desktop: its containers run in a VM
    parts = "; ".join(
        f"{part} " + " / ".join(f"{sum(seconds[way].get(n, 0) for n in names) * 1e6:.0f}" for way in seconds) + " µs"
        for part, names in CPU_PARTS.items()
    )
    say(f"router: CPU per request ({' / '.join(seconds)}), throughput rounds: {parts}")


def bench_router(image: str, rounds: int = 5, seconds: int = 5, connections: int = 16) -> dict[str, float]:
    """Compare GET /locations through the router with the same request straight to web, in one stack.

    wrk, HAProxy, gunicorn and Postgres share the cores, so one stack's
    throughput drifts by a fifth between runs: each round measures both
    ways back to back, which goes first alternates, and the ratio reported
    is the median of the rounds' ratios. Twice as many connections as web
    has threads (2 workers of 4): with exactly 8, how wrk's connections fell
    on gunicorn's two workers swung the direct figure between about 1,000
    and 1,450 req/s from one run to the next, while the router's pooled
    connections stayed put.

    With 16, the split is still lopsided (1/15 to 3/13 connections per
    worker, seen with `ss` in web's network namespace), and a worker with
    too few of them leaves its core idle. wrk's connections through
    docker-proxy are new each run, so the direct figure draws a new split
    every round; the router's pooled ones would keep one split for the
    whole bench and decide every round's ratio alike. So the router is
    restarted before each of its rounds: both ways draw anew each round.
    """
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    direct = free_port()
    with project_copy(image, BENCH_DIRECT_PORT=str(direct), WEB_RELOAD="0") as copy:
        (copy.directory / "docker-compose.override.yml").write_text(DIRECT)
        copy.make("up")
        routed, straight = f"http://127.0.0.1:{copy.port}/locations", f"http://127.0.0.1:{direct}/locations"
        token = seed_locations(f"http://127.0.0.1:{copy.port}", 20)
        plan = f"{rounds} rounds of {seconds} s each way (first one alternating)"
        say(f"router: GET /locations through the router vs straight to web, {plan}: "
            f"throughput with wrk -c{connections}, latency with one connection (-c1)")  # fmt: skip
        wrk(routed, token, 2, connections)
        wrk(straight, token, 2, connections)
        ratios, via_p50, direct_p50 = [], [], []
        spent: dict[str, defaultdict[str, float]] = {routed: defaultdict(float), straight: defaultdict(float)}
        served = {routed: 0.0, straight: 0.0}
        for r in range(rounds):
            order = (routed, straight) if r % 2 == 0 else (straight, routed)
            rps = {}
            for url in order:
                if url == routed:
                    copy.restart("router", f"http://127.0.0.1:{copy.port}/healthz")
                before = cpu_seconds_by_process()
                rps[url] = wrk(url, token, seconds, connections)[0]
                for name, used in cpu_seconds_by_process().items():
                    spent[url][name] += max(0.0, used - before[name])
                served[url] += rps[url] * seconds
            p50 = {url: wrk(url, token, seconds, 1)[1] for url in order}
            ratios.append(rps[routed] / rps[straight])
            via_p50.append(p50[routed])
            direct_p50.append(p50[straight])
            say(f"  round {r + 1}: router {rps[routed]:.0f} req/s, p50 {p50[routed]:.2f} ms; "
                f"direct {rps[straight]:.0f} req/s, p50 {p50[straight]:.2f} ms; ratio {ratios[-1]:.2f}")  # fmt: skip
        say_cpu_per_request({way: {name: used / served[url] for name, used in spent[url].items()}
                             for way, url in (("router", routed), ("direct", straight))})  # fmt: skip
    ratio = statistics.median(ratios)
    added = statistics.median(via_p50) - statistics.median(direct_p50)
    say(f"router: throughput {ratio:.2f}x of direct, median of rounds (range {min(ratios):.2f}-{max(ratios):.2f}; "
        f"goal >= 0.9), median latency added {added:.2f} ms (goal <= 1 ms)")  # fmt: skip
    return {"router_throughput_ratio": round(ratio, 2), "router_added_p50_ms": round(added, 2)}


def busy_cpu_seconds() -> float:
    """Return the CPU time all cores have spent busy so far (not idle, not waiting on I/O), from /proc/stat."""
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def bench_idle(image: str, seconds: int = 30) -> dict[str, float]:
    """Measure the CPU a stack left alone after `make up` takes, whole machine and the stack's own programs.

    The rest is mostly Docker running the healthchecks: each probe (web's
    every second, db's every 2 s) is a process started in the container.
    """
    with project_copy(image) as copy:
        copy.make("up")
        time.sleep(5)  # past the first probes and live reload's start
        machine, programs = busy_cpu_seconds(), cpu_seconds_by_process()
        time.sleep(seconds)
        machine = busy_cpu_seconds() - machine
        after = cpu_seconds_by_process()
    own = {name: after[name] - programs[name] for name in ("gunicorn", "haproxy", "postgres")}
    share = {name: used / seconds * 100 for name, used in {"machine": machine, **own}.items()}
    rest = share["machine"] - sum(share[name] for name in own)
    say(f"idle: over {seconds} s the machine was busy {share['machine']:.1f}% of one core: gunicorn "
        f"{share['gunicorn']:.1f}%, HAProxy {share['haproxy']:.1f}%, Postgres {share['postgres']:.1f}%, the rest "
        f"{rest:.1f}% (Docker's healthcheck probes, Compose's watch)")  # fmt: skip
    return {"idle_core_percent": round(share["machine"], 1), "idle_rest_core_percent": round(rest, 1)}


def bench_test() -> dict[str, float]:
    """Time the whole `make test` (images already built, as on a developer's machine)."""
    started = time.monotonic()
    result = subprocess.run(["make", "test"], cwd=ROOT, capture_output=True, text=True)
    took = time.monotonic() - started
    summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
    say(f"test: make test took {took:.0f} s ({summary.strip('= ')}) (goal <= 60 s)")
    if result.returncode != 0:
        raise SystemExit(f"make test failed:\n{result.stdout[-3000:]}")
    return {"make_test_s": round(took)}


def gunicorn(app: str, env: dict[str, str], port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py", "--access-logfile", "/dev/null", app],
        cwd=ROOT, env={**env, "PORT": str(port)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    wait_for(lambda: http_status(f"http://127.0.0.1:{port}/locations") == 401, 30, 0.05)
    return proc


def bench_throughput(rounds: int = 3, seconds: int = 5, connections: int = 16, locations: int = 20) -> dict[str, float]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with running_postgres() as url:
        servers: list[subprocess.Popen[str]] = []
        try:
            env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "WEB_CONCURRENCY": "2",
                   "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
            subprocess.run(
                [sys.executable, "-m", "app.migrations", "release"], cwd=ROOT, env=env, check=True, capture_output=True
            )
            app_port, base_port, plain_port = free_port(), free_port(), free_port()
            servers.append(gunicorn("app:create_app()", env, app_port))
            servers.append(gunicorn("bench.baseline_wsgi:application", env, base_port))
            servers.append(gunicorn("bench.plain_db:create()", env, plain_port))

            app_url, base_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{base_port}"
            plain_url = f"http://127.0.0.1:{plain_port}"
            token = seed_locations(app_url, locations)
            listings = [
                http_json(f"{url}/locations", token=token, expect=200)[1] for url in (app_url, base_url, plain_url)
            ]
            if not listings[0] == listings[1] == listings[2]:
                raise SystemExit("the servers do not return the same listing; the comparison would be unfair")

            say(f"throughput: GET /locations ({locations} locations), wrk -c{connections}, "
                f"{rounds} alternating rounds of {seconds} s, WEB_CONCURRENCY=2")  # fmt: skip
            for warm_up in (app_url, base_url, plain_url):
                wrk(f"{warm_up}/locations", token, 2, connections)
            app_rps, base_rps, plain_rps = [], [], []
            for r in range(rounds):
                app_rps.append(wrk(f"{app_url}/locations", token, seconds, connections)[0])
                base_rps.append(wrk(f"{base_url}/locations", token, seconds, connections)[0])
                plain_rps.append(wrk(f"{plain_url}/locations", token, seconds, connections)[0])
                say(f"  round {r + 1}: app {app_rps[-1]:.0f} req/s, baseline {base_rps[-1]:.0f} req/s, "
                    f"plain SQLAlchemy habits {plain_rps[-1]:.0f} req/s")  # fmt: skip
            app, base, plain = (statistics.mean(rps) for rps in (app_rps, base_rps, plain_rps))
            say(f"throughput: app {app:.0f} req/s, baseline {base:.0f} req/s, ratio {app / base:.2f} (goal >= 0.50)")
            say(f"db habits (app/db.py): app {app:.0f} req/s vs pre-ping and a transaction per read {plain:.0f} req/s, "
                f"{app / plain:.2f}x")  # fmt: skip
            return {"app_rps": round(app), "baseline_rps": round(base), "ratio": round(app / base, 2),
                    "plain_db_rps": round(plain), "db_habits_gain": round(app / plain, 2)}  # fmt: skip
        finally:
            for server in servers:
                server.send_signal(signal.SIGTERM)
                server.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = ["image", "start", "up", "reload", "throughput", "router", "idle", "test"]
    parser.add_argument("--only", nargs="*", choices=names)
    args = parser.parse_args()
    wanted = set(args.only or names)
    results: dict[str, float] = {}
    image = "flask-heroku-parity:bench"
    if wanted & {"image", "start", "up", "reload", "router", "idle"}:
        say("building the app image")
        build_app_image(image)
    if "image" in wanted:
        results |= bench_image(image)
    if "start" in wanted:
        results |= bench_start(image)
    if "up" in wanted:
        results |= bench_up(image)
    if "reload" in wanted:
        results |= bench_reload(image)
    if "throughput" in wanted:
        results |= bench_throughput()
    if "router" in wanted:
        results |= bench_router(image)
    if "idle" in wanted:
        results |= bench_idle(image)
    if "test" in wanted:
        results |= bench_test()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
