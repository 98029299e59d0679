"""PostgreSQL's LISTEN/NOTIFY, received by one thread per process.

Writers announce in the database itself (triggers, see the migrations), so an announcement
goes out exactly when the change commits, whichever code or process made it, and never for
a change that rolled back. The listener hands each payload to the callbacks subscribed to
its channel. NOTIFY is not durable: what is sent while the listener is disconnected is
lost, so it also tells its watchers when its connection goes (they must then assume they
miss announcements) and when it is back, listening again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

INBOX_CHANNEL = "billing_webhook_inbox"
EVENTS_CHANNEL = "billing_events"  # outbound events written, deliveries due again
APPLICATION_NAME = "billing-listener"  # how pg_stat_activity shows the listeners

# A connection that dies without a word (a failover, a cut cable) is noticed within seconds.
_KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 10_000,
    "connect_timeout": 5,
}


def conninfo(url: URL) -> str:
    """psycopg's connection string for SQLAlchemy's URL of the same database."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ProcessThread:
    """A daemon thread that each process starts once, on first use: a thread started
    before gunicorn forks does not exist in the forked workers."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        self.name = name
        self.target = target
        self._pid: int | None = None
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self.thread = threading.Thread(target=self.target, name=self.name, daemon=True)
            self.thread.start()


class Listener:
    """LISTENs on every subscribed channel over a connection of its own, reconnecting
    (every `reconnect_wait` seconds) until stopped."""

    def __init__(self, conninfo: str, *, reconnect_wait: float = 1.0, poll: float = 1.0) -> None:
        self.conninfo = conninfo
        self.reconnect_wait = reconnect_wait
        self.poll = poll
        self.connected = threading.Event()
        self._callbacks: dict[str, list[Callable[[str], None]]] = {}
        self._watchers: list[Callable[[bool], None]] = []
        self._stop = threading.Event()
        self._thread = ProcessThread("notify-listener", self._run)
        self._connection: psycopg.Connection | None = None

    def subscribe(self, channel: str, callback: Callable[[str], None]) -> None:
        """Call `callback(payload)` for each notification on `channel`; subscribe before
        the listener starts (it LISTENs when it connects)."""
        self._callbacks.setdefault(channel, []).append(callback)

    def watch(self, callback: Callable[[bool], None]) -> None:
        """Call `callback(True)` once listening, `callback(False)` when the connection is lost."""
        self._watchers.append(callback)

    def ensure_running(self) -> None:
        self._thread.ensure_running()

    def stop(self) -> None:
        """Stop listening; returns once the connection is closed."""
        self._stop.set()
        thread = self._thread.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self.poll + 5)

    @property
    def backend_pid(self) -> int | None:
        """The database process serving the listening connection, while there is one."""
        connection = self._connection
        return connection.info.backend_pid if connection is not None else None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as error:
                log.warning("notification listener lost its connection: %s", type(error).__name__)
            except Exception:
                log.exception("notification listener failed")
            finally:
                self._set_connected(False)
            self._stop.wait(self.reconnect_wait)

    def _listen(self) -> None:
        with psycopg.connect(
            self.conninfo, autocommit=True, application_name=APPLICATION_NAME, **_KEEPALIVE
        ) as connection:
            self._connection = connection
            for channel in self._callbacks:
                connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            self._set_connected(True)
            while not self._stop.is_set():
                for notification in connection.notifies(timeout=self.poll):
                    self._deliver(notification.channel, notification.payload)
                connection.execute("SELECT 1")  # a connection that went quietly is noticed

    def _deliver(self, channel: str, payload: str) -> None:
        for callback in self._callbacks.get(channel, ()):
            try:
                callback(payload)
            except Exception:
                log.exception("notification callback for %s failed", channel)

    def _set_connected(self, connected: bool) -> None:
        if connected == self.connected.is_set():
            return
        if connected:
            self.connected.set()
        else:
            self.connected.clear()
            self._connection = None
        for watcher in self._watchers:
            try:
                watcher(connected)
            except Exception:
                log.exception("notification watcher failed")


def listener_of(app) -> Listener | None:
    """The app's listener (PostgreSQL only), created on first ask, not yet started."""
    if "billing_listener" not in app.extensions:
        from billing_app.extensions import db

        with app.app_context():
            engine = db.engine
        postgres = engine.dialect.name == "postgresql"
        app.extensions["billing_listener"] = Listener(conninfo(engine.url)) if postgres else None
    return app.extensions["billing_listener"]
