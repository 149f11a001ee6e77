"""The local status page: a Flask app over the store, read-only, answering the LAN only.

`create_app(db_path)` is the app factory (gunicorn and the tests both call it). A request must come
from the LAN (lan.py) and name the appliance (hosts.py) before anything is read. Each request
opens the store read-only and closes it at the end, so the daemon's writes are never blocked and
the page always shows the last committed state.
"""
from __future__ import annotations

import os
import sqlite3

from flask import Flask, current_app, g
from markupsafe import Markup
from werkzeug.exceptions import ServiceUnavailable

from ..report import human
from ..settings import STORE_PATH
from ..store.db import StoreError
from ..words import LABELS, Attribution, ScanKind, Verdict
from .hosts import OwnNamesOnly
from .lan import LanOnly


def create_app(db_path: str | None = None, *, extra_lan: tuple[str, ...] = (), lan_only: bool = True) -> Flask:
    app = Flask(__name__)
    app.config.update(
        DB_PATH=db_path or os.environ.get("HARVESTWATCH_DB", STORE_PATH),
        JSON_SORT_KEYS=False,
        LAN_ONLY=lan_only,
    )
    app.json.sort_keys = False
    app.json.compact = False
    # The words the templates compare and show, from their one definition.
    app.jinja_env.globals.update(Attribution=Attribution, LABELS=LABELS, ScanKind=ScanKind, Verdict=Verdict)
    app.jinja_env.filters.update(plural=human.plural, port_ranges=human.port_ranges, lag=human.lag_text, when=when)
    from . import views
    app.register_blueprint(views.pages)
    app.register_blueprint(views.api, url_prefix="/api")
    app.before_request(LanOnly(app, extra_lan))
    app.before_request(OwnNamesOnly())
    app.register_error_handler(sqlite3.Error, _unreadable_store)
    app.register_error_handler(StoreError, _unreadable_store)
    app.after_request(_security_headers)
    app.teardown_appcontext(_close_store)
    return app


def when(iso_time: str | None, style: str = "ago") -> Markup:
    """A time as the page shows it: to the minute in UTC, which page.js turns into the viewer's
    local time and how long ago ("ago"), or the local day and clock alone ("clock", a chart's axis);
    the exact UTC time on hover either way."""
    if not iso_time:
        return Markup("—")
    return Markup('<time datetime="{0}" title="{0}" data-style="{1}">{2}</time>').format(
        iso_time, style, human.utc_text(iso_time))


def _security_headers(response):
    # Everything is served from here; nothing inline runs, so injected markup could not either.
    response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                   "style-src 'self'; script-src 'self'; frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _unreadable_store(exc):
    # A store that opened but breaks mid-page (a damaged page, a disk error): the LAN is told why
    # (strangers never get here: LanOnly answered them first). 503 and the reason, not a 500.
    from .views import error
    return error(ServiceUnavailable(description=f"The store at {current_app.config['DB_PATH']} cannot be read: "
                                                f"{exc}"))


def _close_store(exc) -> None:
    store = g.pop("store", None)
    if store is not None:
        store.close()
