"""gunicorn hooks for metrics in multiprocess mode: `gunicorn -c python:billing_app.gunicorn_conf`.

PROMETHEUS_MULTIPROC_DIR must be set (and empty) in the shell that starts gunicorn; see
`billing_app.metrics`. Without it these hooks do nothing."""

import os


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
