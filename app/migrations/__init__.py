"""Migration operations, apart from the web modules: what runs Alembic safely and says where the schema stands.

- ``history``: the scripts, the head, and a database's state against them;
- ``safety``: the advisory lock, lock and statement timeouts, one-line failures
  (``alembic/env.py`` applies them to every online run);
- ``release``, ``status``, ``check``: the operations, and ``seed``, the demo
  data, behind one command line in ``cli`` (``python -m app.migrations --help``).
"""
