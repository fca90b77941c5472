"""gunicorn settings for the web process, tuned to Heroku's router and dyno lifecycle.

Two development modes change this process and nothing else, and only when
Compose asks for them (Heroku sets neither variable):

- ``WEB_RELOAD=1`` (``make up``): a thread in the master watches ``app/`` and
  ``alembic/`` and, when a file changes, restarts the workers on the new code
  (gunicorn's own SIGHUP reload). Third-party modules stay imported in the
  master, so a new worker only imports the project's modules (about 0.1 s).
  A file that does not compile is reported in one line and the workers keep
  serving the previous code; a module that fails on import is reported in one
  line per worker, which then answers 500 until the next save.
- ``WEB_DEBUG=1`` (``make debug``): one worker, one thread, no timeout, so a
  ``breakpoint()`` can be stepped through at the terminal.

A Compose dyno (``LOCAL_STACK=1``) also keeps Heroku's boot timeout
(``BOOT_TIMEOUT``), which Heroku's dyno manager keeps for its own dynos.
"""

import contextlib
import hashlib
import os
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

from gunicorn.glogging import Logger

DEBUG = os.environ.get("WEB_DEBUG") == "1"
RELOAD = os.environ.get("WEB_RELOAD") == "1" and not DEBUG
PROJECT_ROOT = Path(__file__).resolve().parent
WATCHED = (PROJECT_ROOT / "app", PROJECT_ROOT / "alembic")


def whole_number(name: str, default: int) -> int:
    """Return the variable ``name`` as a number of 1 or more; stop gunicorn with one line if it is not one."""
    raw = os.environ.get(name, "").strip() or str(default)
    if not (raw.isascii() and raw.isdecimal()) or int(raw) < 1:
        sys.exit(f"error: {name} must be a whole number of 1 or more, got {raw!r}")
    return int(raw)


# Heroku assigns $PORT. A dyno listens on every interface: the router
# reaches it from outside its container. make local sets WEB_HOST=127.0.0.1,
# so on the host only this machine's own programs reach it (as gunicorn's own default).
bind = f"{os.environ.get('WEB_HOST') or '0.0.0.0'}:{whole_number('PORT', 5000)}"

# Heroku stops a web dyno that has not bound $PORT within 60 s of its launch
# (R10 "Boot timeout"; its boot timeout tool can raise that). gunicorn binds
# once the app is imported (preload_app below), so what trips it is a slow
# import, or a bind to another port given on the Procfile's line; under live
# reload the master binds first, and the boot counts until it has imported
# the app.
# A Compose dyno (LOCAL_STACK=1) gets the same limit from here; on Heroku,
# Heroku's own applies, and make debug's dyno has none (a breakpoint waits).
BOOT_TIMEOUT = whole_number("WEB_BOOT_TIMEOUT", 60)

# WEB_CONCURRENCY, if set: Heroku's Python buildpack sets it from the dyno
# size, but the container stack runs no buildpack, so on Heroku it is what
# `heroku config:set` gives, else 2, which suits a 512 MB dyno.
workers = 1 if DEBUG else whole_number("WEB_CONCURRENCY", 2)
worker_class = "gthread"
threads = 1 if DEBUG else whole_number("GUNICORN_THREADS", 4)

# The router gives up on a request after 30 s, and a dyno gets SIGKILL 30 s
# after SIGTERM: finish (or abandon) work before either happens
# (Dev Center: "Request Timeout", "Dyno Shutdown"). A debugger has all day,
# and Ctrl-C at its prompt should end it at once, not after 25 s.
timeout = 0 if DEBUG else 25
graceful_timeout = 1 if DEBUG else 25
# A request's statements give up with the worker (app/config.py's
# DB_STATEMENT_TIMEOUT): past the router's 30 s its client has a 503 already,
# and its work must not commit. Web only: a one-off's statements run as long
# as they need. A debugger has all day here too.
STATEMENT_TIMEOUT = f"{timeout}s"
os.environ.setdefault("DB_STATEMENT_TIMEOUT", STATEMENT_TIMEOUT)

# The router keeps idle connections open for up to 90 s; closing ours first
# would race with it reusing them, so stay open longer (Dev Center: "HTTP Routing").
# Under live reload, none: a worker that is stopping for a reload still
# answers on the connections it holds, so the router would send the request
# after a save to the old code for a second or two.
keepalive = 0 if RELOAD else 100

# Import the app once in the master: workers fork ready to serve, and a bad
# configuration stops start-up with its one-line message instead of looping.
# Reloading needs each worker to import the code afresh instead.
preload_app = not RELOAD

accesslog = "-"
errorlog = "-"
# logfmt, as heroku/python-getting-started logs it, with the request id the
# router set: one id follows a request from the router's line to the app's.
# The path is the request target as sent (percent-encoded, query included),
# as the router logs it; see AccessLog for why it is not gunicorn's %(U)s.
access_log_format = (
    'method=%(m)s path="%(path)s" status=%(s)s bytes=%(B)s duration=%(M)sms '
    'request_id=%({x-request-id}i)s fwd="%(fwd)s"'
)


def escaped(value: str) -> str:
    """Return ``value`` fit for a logfmt "..." field: backslashes doubled, control characters as \\xNN.

    gunicorn escapes the quotes itself (SafeAtoms).
    """
    return "".join("\\\\" if c == "\\" else c if c.isprintable() else f"\\x{ord(c):02x}" for c in value)


class AccessLog(Logger):
    """gunicorn's logger with fields no client can forge, minus the access line of health probes.

    gunicorn's %(U)s is the decoded path: a %0A in a URL would end the line
    and start a forged one, and %1B would send escape codes to the terminal.
    The path and X-Forwarded-For (which starts with what the client sent) are
    logged escaped instead.

    A probe (every second) is a GET of a health page that says it is one; any
    other request is logged whatever its User-Agent, so no client can keep
    itself out of the log.
    """

    PROBED = ("/healthz", "/readyz")

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["path"] = escaped(environ.get("RAW_URI", ""))
        atoms["fwd"] = escaped(environ.get("HTTP_X_FORWARDED_FOR", "-"))
        return atoms

    def access(self, resp, req, environ, request_time):
        probe = (
            environ.get("REQUEST_METHOD") == "GET"
            and environ.get("PATH_INFO") in self.PROBED
            and environ.get("HTTP_USER_AGENT") == "healthcheck"
        )
        if not probe:
            super().access(resp, req, environ, request_time)


logger_class = AccessLog

# Heartbeat files on tmpfs, not the container's overlay filesystem.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# gunicorn 24+ opens a control socket under $HOME; a dyno's arbitrary user has
# no writable home, and nothing here manages gunicorn at run time.
control_socket_disable = True


def launched_ago() -> float:
    """Return the seconds since this process was launched, from /proc (its dyno started it just before)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, the start time in clock ticks


# Set by when_ready: $PORT is bound and the app imported (under live reload the
# master imports it just after the bind; Heroku's preload_app does so before).
BOOTED = threading.Event()


def listening(address: tuple[str, int]) -> bool:
    """Return whether something accepts connections at ``address``."""
    try:
        socket.create_connection(address, timeout=1).close()
    except OSError:
        return False
    return True


def own_address() -> tuple[str, int]:
    """Return where web answers on $PORT inside its dyno, as this file binds it."""
    host, port = bind.rsplit(":", 1)
    return ("127.0.0.1" if host == "0.0.0.0" else host, int(port))


def boot_timed_out() -> None:
    """Stop the dyno as Heroku does when web has not bound $PORT in time (R10): at once, with status 137.

    Booted is not enough: a bind given on the Procfile's line (or in
    GUNICORN_CMD_ARGS) wins over this file's, and web on another port than
    $PORT is one Heroku's router never reaches. Before when_ready gunicorn
    has no workers; after it, the dyno's first process (bin/proc) ends
    them with it.
    """
    if BOOTED.is_set() and listening(own_address()):
        return
    way_out = (
        "web is up, but not on $PORT: drop the --bind on the Procfile's line (or in GUNICORN_CMD_ARGS), "
        "gunicorn.conf.py binds $PORT"
        if BOOTED.is_set()
        else "load less when the app is imported, or raise the limit (Heroku's boot timeout tool, "
        "and WEB_BOOT_TIMEOUT here)"
    )
    sys.stderr.write(
        f"Error R10 (Boot timeout) -> Web process failed to bind to $PORT within {BOOT_TIMEOUT} seconds of launch: "
        f"Heroku stops such a dyno with SIGKILL; {way_out}\n"
    )
    sys.stderr.flush()
    os._exit(137)


def watch_boot() -> None:
    """In a Compose dyno, time the boot as Heroku does: a timer ends the process unless it booted in time.

    The timer counts from the process's launch (a launch slower than the
    limit is stopped at once). gunicorn runs this file again on a reload
    (SIGHUP), when web listens already: then no timer is set.
    """
    if os.environ.get("LOCAL_STACK") != "1" or DEBUG or listening(own_address()):
        return
    timer = threading.Timer(max(0.0, BOOT_TIMEOUT - launched_ago()), boot_timed_out)
    timer.daemon = True
    timer.start()


watch_boot()


def log_schema_state(app, log, only_if_behind: bool = False):
    """Log where the database schema stands, naming pending revisions (``only_if_behind``: unless it is at
    head); never stop the process for it."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.migrations.history import HistoryError, schema_state
    from app.migrations.safety import db_error_reason

    try:
        with app.extensions["db.engine"].connect() as connection:
            state = schema_state(connection)
    except HistoryError as exc:
        log.warning("%s", exc)
        return
    except SQLAlchemyError as exc:
        log.warning("database unavailable at start-up: %s", db_error_reason(exc))
        return
    if not (state.current and only_if_behind):
        (log.info if state.current else log.warning)(state.summary(app.extensions["settings"].local))


def post_worker_init(worker):
    """Have the first worker (and the first after a live reload) log the schema state, in a thread, so
    serving never waits for it."""
    first = worker.age in (1, getattr(worker, "first_after_reload", 0))
    if first and hasattr(worker.wsgi, "extensions"):
        args = (worker.wsgi, worker.log, worker.age != 1)  # after a reload, only a schema that is not at head
        threading.Thread(target=log_schema_state, args=args, daemon=True).start()


def post_fork(server, worker):
    """Drop pooled connections inherited from the master (each worker opens its own); under live reload,
    let the worker load the app whatever it raises, and know whether it is the first after a reload."""
    app = server.app.callable
    engine = getattr(app, "extensions", {}).get("db.engine")
    if engine is not None:
        engine.dispose(close=False)
    if RELOAD:
        survive_load_errors(worker)
        worker.first_after_reload = getattr(server, "first_age_after_reload", 0)


def worker_exit(server, worker):
    """Close the worker's pooled connections as it exits (reload, scale down, shutdown), so
    Postgres sees them end instead of logging each as "Connection reset by peer"."""
    engine = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("db.engine")
    if engine is not None:
        engine.dispose()


def when_ready(server):
    """Say which dyno this is, and start watching the code when reloading is on; the boot is over."""
    if os.environ.get("DYNO"):
        server.log.info("dyno %s is up", os.environ["DYNO"])
    if RELOAD:
        preload_libraries(server)
        threading.Thread(target=watch_code, args=(server,), name="reload", daemon=True).start()
        server.log.info("reload: watching %s; a saved change restarts the workers", ", ".join(w.name for w in WATCHED))
    BOOTED.set()


# --- Development: reload on save ---------------------------------------------


def describe_error(exc: BaseException) -> str:
    """Return ``path:line: Type: message`` for the project line that raised ``exc``."""
    if isinstance(exc, SyntaxError):
        where = f"{shown(exc.filename)}:{exc.lineno}" if exc.filename else "?"
        return f"{where}: {type(exc).__name__}: {exc.msg}"
    # The project's own lines, not this file's: its hooks only call into the app.
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename.startswith(str(PROJECT_ROOT)) and Path(f.filename).resolve() != Path(__file__).resolve()
    ]
    where = f"{shown(frames[-1].filename)}:{frames[-1].lineno}: " if frames else ""
    if not frames and type(exc).__name__ == "AppImportError":  # gunicorn finds no app where the Procfile says
        where = "Procfile (web's app): "
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{where}{type(exc).__name__}: {message}"


def shown(path: str) -> str:
    """Return ``path`` relative to the project, as the developer's editor shows it."""
    return os.path.relpath(path, PROJECT_ROOT) if path.startswith(str(PROJECT_ROOT)) else path


def project_modules() -> list[str]:
    """Return the names of imported modules that live in the watched directories."""
    roots = tuple(f"{w}{os.sep}" for w in WATCHED)
    return [
        name
        for name, module in list(sys.modules.items())
        if (getattr(module, "__file__", None) or "").startswith(roots)
    ]


def preload_libraries(server):
    """Import the app once so its libraries stay in the master, then forget the project's own modules."""
    from gunicorn.util import import_app

    try:
        import_app(server.app.app_uri)
    except BaseException as exc:  # the workers report it; the master must keep watching
        server.log.warning("reload: the code does not load yet (%s); waiting for a fix", describe_error(exc))
    for name in project_modules():
        del sys.modules[name]


def survive_load_errors(worker):
    """Make a worker that cannot import the app report it in one line and answer 500, instead of halting gunicorn."""
    load = worker.load_wsgi

    def load_or_report():
        try:
            load()
        except Exception as exc:
            line = describe_error(exc)
            worker.log.error("reload: the app failed to load: %s; fix it and save", line)
            worker.wsgi = failed_app(line)

    worker.load_wsgi = load_or_report


def failed_app(line: str):
    """Return a WSGI app that answers every request with the load error, as the API's JSON error."""
    import json

    body = json.dumps(
        {"error": {"code": 500, "name": "Internal Server Error", "message": f"The app failed to load: {line}"}}
    ).encode()

    def app(environ, start_response):
        start_response(
            "500 Internal Server Error", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


def code_files() -> dict[str, tuple[int, int, int, int]]:
    """Return every watched file with its (mtime, ctime, size, inode).

    ctime counts: a sync may keep a file's size and restore its mtime to the
    second, but the kernel sets ctime on every write. Polling a few dozen
    files twenty times a second costs well under 1 ms a round, and needs
    nothing installed in the image Heroku runs.
    """
    found = {}
    for root in WATCHED:
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
            for name in files:
                path = os.path.join(directory, name)
                try:
                    stat = os.stat(path)
                except OSError:  # deleted while walking
                    continue
                found[path] = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)
    return found


def syntax_error(paths) -> str | None:
    """Return the first compile error among ``paths``, described in one line."""
    for path in sorted(p for p in paths if p.endswith(".py")):
        try:
            compile(Path(path).read_bytes(), path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            return describe_error(exc) if isinstance(exc, SyntaxError) else f"{shown(path)}: {exc}"
        except OSError:
            continue
    return None


def contents(paths) -> bytes:
    """Return a digest of the Python files among ``paths`` (unreadable ones count as empty)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in paths if p.endswith(".py")):
        digest.update(os.fsencode(path))
        with contextlib.suppress(OSError):
            digest.update(Path(path).read_bytes())
    return digest.digest()


class CodeWatcher:
    """Restart the workers after a change to the watched files, once the files compile; say a compile error once."""

    def __init__(self, log, restart, settle: float = 0.02) -> None:
        self.log, self.restart, self.settle = log, restart, settle
        self.seen = code_files()
        self.reported: tuple[str, bytes] | None = None

    def check(self) -> None:
        """Look at the files once; act if they changed since the last look."""
        current = code_files()
        if current == self.seen:
            return
        time.sleep(self.settle)  # an editor or a sync may write several files in a row
        current = code_files()
        paths = [p for p in current.keys() | self.seen.keys() if current.get(p) != self.seen.get(p)]
        self.seen = current
        broken = syntax_error(current)
        if broken:
            # A sync (or a branch switch) may set files' times or modes a
            # moment after their bytes: the same error in the same code is said once.
            said, self.reported = self.reported, (broken, contents(current))
            if said != self.reported:
                self.log.error("reload: %s; fix it and save (still serving the previous code)", broken)
            return
        self.reported = None
        self.log.info("reload: %s changed; restarting the workers", ", ".join(sorted(shown(p) for p in paths)))
        self.restart()


def reload_workers(server) -> None:
    """Restart the workers with gunicorn's SIGHUP; the first new one logs the schema state, so a saved
    revision is in make logs. Kept on the master, as this file is run afresh on each reload."""
    server.first_age_after_reload = server.worker_age + 1
    os.kill(server.pid, signal.SIGHUP)


def watch_code(server, interval: float = 0.05):
    """Look at the watched files every ``interval`` s; restart the workers when they changed."""
    watcher, failed = CodeWatcher(server.log, lambda: reload_workers(server)), None
    while True:
        time.sleep(interval)
        try:
            watcher.check()
        except Exception as exc:  # keep watching: a dead thread would end live reload without a word
            if repr(exc) != failed:
                server.log.error("reload: could not look at the code (%s: %s); still watching", type(exc).__name__, exc)
            failed = repr(exc)
        else:
            failed = None
