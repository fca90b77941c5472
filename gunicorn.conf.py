"""gunicorn settings for the web process, tuned to Heroku's router and dyno lifecycle."""

import os
import threading

# Heroku assigns $PORT; listen on every interface so the router (or Docker) reaches us.
bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"

# Heroku sets WEB_CONCURRENCY from the dyno size; 2 suits a 512 MB dyno.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))

# The router gives up on a request after 30 s, and a dyno gets SIGKILL 30 s
# after SIGTERM: finish (or abandon) work before either happens.
timeout = 25
graceful_timeout = 25

# The router keeps idle connections open for up to 90 s; closing ours first
# would race with it reusing them, so stay open longer.
keepalive = 100

# Import the app once in the master: workers fork ready to serve, and a bad
# configuration stops start-up with its one-line message instead of looping.
preload_app = True

accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'

# Heartbeat files on tmpfs, not the container's overlay filesystem.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"


def log_schema_state(app, log):
    """Log where the database schema stands, naming pending revisions; never stop the process for it."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.schema import schema_state

    try:
        with app.extensions["db.engine"].connect() as connection:
            state = schema_state(connection)
    except SQLAlchemyError as exc:
        log.warning("database unavailable at start-up: %s", str(exc).split("\n", 1)[0])
        return
    (log.info if state.current else log.warning)(state.summary())


def post_worker_init(worker):
    """Have the first worker log the schema state, in a thread, so serving never waits for it."""
    if worker.age == 1 and hasattr(worker.wsgi, "extensions"):
        threading.Thread(target=log_schema_state, args=(worker.wsgi, worker.log), daemon=True).start()


def post_fork(server, worker):
    """Drop pooled connections inherited from the master; each worker opens its own."""
    app = server.app.callable
    engine = getattr(app, "extensions", {}).get("db.engine")
    if engine is not None:
        engine.dispose(close=False)


# gunicorn 24+ opens a control socket under $HOME; a dyno's arbitrary user has
# no writable home, and nothing here manages gunicorn at run time.
control_socket_disable = True
