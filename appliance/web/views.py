"""Routes: one HTML page and one `/api/...` JSON document per view, from the same data function."""
from __future__ import annotations

import csv
import io
import os
import sqlite3
import time

from flask import Blueprint, Response, abort, current_app, g, jsonify, render_template, request

from ..store.db import MIGRATIONS, Store, StoreError
from . import data, metrics

pages = Blueprint("pages", __name__)
api = Blueprint("api", __name__)


def store() -> Store:
    if "store" not in g:
        g.store = _open_store(current_app.config["DB_PATH"])
    return g.store


def _open_store(path: str) -> Store:
    if not os.path.exists(path):
        abort(503, description=f"No HarvestWatch store at {path} yet: the daemon has not run.")
    opened = None
    try:
        opened = Store(path, readonly=True)
        # The read-only open checks nothing: a garbage or half-created file must fail here, not mid-page.
        version = opened.schema_version()
        if version == 0:
            raise StoreError("it is not a HarvestWatch store (or not set up yet)")
        if version > len(MIGRATIONS):
            raise StoreError(f"its schema {version} is newer than this HarvestWatch ({len(MIGRATIONS)})")
    except (sqlite3.Error, StoreError) as exc:
        if opened is not None:
            opened.close()
        abort(503, description=f"The store at {path} cannot be read: {exc}")
    return opened


MAX_PAGE = 1_000_000
SQLITE_MAX_INT = 2 ** 63 - 1


def _page() -> int:
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:
        abort(400, description="page must be a number")
    if page > MAX_PAGE:  # SQLite cannot take the offset of a page number beyond its integers
        abort(400, description=f"page must be a number from 1 to {MAX_PAGE}")
    return max(1, page)


def _scan(scan_id: int) -> dict:
    doc = data.scan(store(), scan_id) if scan_id <= SQLITE_MAX_INT else None
    if doc is None:
        abort(404, description=f"No scan {scan_id}.")
    return doc


def _filters(check) -> dict:
    try:
        return check(request.args)
    except ValueError as exc:
        abort(400, description=str(exc))


def _scan_filters() -> dict:
    return _filters(data.scan_filters)


# -- pages ---------------------------------------------------------------------------------------
@pages.get("/")
def overview():
    return render_template("overview.html", doc=data.overview(store()))


@pages.get("/servers")
def servers():
    # Rendered once per commit (a few hundred table rows take longer to render than to read), and
    # again each minute (the time left of a watch) and when a probe's window ends (a verdict).
    # Only the first page is kept: one entry per page number would let a client grow the memo.
    page, filters = _page(), _filters(data.server_filters)
    render = lambda: render_template("servers.html", doc=data.servers(store(), page, filters=filters))  # noqa: E731
    if page == 1 and not filters:
        return data.memoized(store(), ("servers.html", request.script_root), render,
                             stamp=lambda: int(time.time() // 60), expires=lambda: data.until_a_window_ends(store()))
    return render()


@pages.get("/scans")
def scans():
    return render_template("scans.html", doc=data.scans(store(), _scan_filters(), _page()))


@pages.get("/scans/<int:scan_id>")
def scan(scan_id: int):
    return render_template("scan.html", scan=_scan(scan_id))


@pages.get("/scanners")
def scanners():
    # The first page is made of scans, touches and names alone (no clock): rendered once while they
    # stay the same (data.lasting), not per request nor per commit.
    page = _page()
    render = lambda: render_template("scanners.html", doc=data.scanners(store(), page))  # noqa: E731
    if page == 1:
        return data.lasting(store(), ("scanners.html", request.script_root), store().scanners_fingerprint, render)
    return render()


@pages.get("/probes")
def probes():
    # Rendered once per commit and minute (a probe's watch ends on the clock, not on a commit).
    filters = _filters(data.probe_filters)
    render = lambda: render_template("probes.html", doc=data.probes(store(), filters=filters))  # noqa: E731
    if filters:
        return render()
    # the prober's state is in the live status
    return data.memoized(store(), ("probes.html", request.script_root), render,
                         stamp=lambda: (int(time.time() // 60), data.live_stamp(store())))


@pages.get("/probes/<int:probe_id>")
def probe(probe_id: int):
    return render_template("probe.html", probe=_probe(probe_id))


def _probe(probe_id: int) -> dict:
    doc = data.probe(store(), probe_id) if probe_id <= SQLITE_MAX_INT else None
    if doc is None:
        abort(404, description=f"No probe {probe_id}.")
    return doc


@pages.get("/about")
def about():
    return render_template("about.html")


@pages.get("/export/harvesters.csv")
def harvesters_csv():
    rows = data.harvester_evidence(store())
    out = io.StringIO()
    fields = list(rows[0]) if rows else ["server", "probe_address", "probe_kind", "probe_port", "probe_time",
                                         "probe_source_port", "touched_by", "scanner_family", "protocol", "port",
                                         "first_touch", "last_touch", "packets", "lag_seconds"]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=harvestwatch-harvesters.csv"})


@pages.get("/export/harvesters.json")
def harvesters_json():
    response = jsonify({"harvester_evidence": data.harvester_evidence(store())})
    response.headers["Content-Disposition"] = "attachment; filename=harvestwatch-harvesters.json"
    return response


@pages.get("/metrics")
def prometheus():
    return Response(metrics.render(data.overview(store())), mimetype="text/plain; version=0.0.4")


@pages.app_errorhandler(400)
@pages.app_errorhandler(403)
@pages.app_errorhandler(404)
@pages.app_errorhandler(503)
def error(exc):
    if request.path.startswith("/api/"):
        return jsonify({"error": exc.description, "status": exc.code}), exc.code
    return render_template("error.html", error=exc), exc.code


# -- JSON ----------------------------------------------------------------------------------------
# Every page's JSON twin, listed at /api/ (the HTML page's path under /api/, same query string).
API_VIEWS = {"overview": "the Overview: health, harvester cards, numbers, the 48 h timeline",
             "servers": "the NTP servers and their verdicts (?verdict=, ?server=, ?page=)",
             "scans": "scans, newest first (?scanner=, ?family=, ?target=, ?server=, ?attribution=, ?kind=, ?page=)",
             "scans/<id>": "one scan: its ports, trigger candidates and probe",
             "scanners": "scanner families, busiest first, and the harvesters that fed them (?page=)",
             "probes": "the probe ledger, newest first (?server=)",
             "probes/<id>": "one probe: its packet, reachability and every touch",
             "harvesters": "the evidence against every confirmed harvester, one row per touch"}


@api.get("/")
def api_index():
    return jsonify({"views": [{"path": f"{request.script_root}/api/{path}", "what": what}
                              for path, what in API_VIEWS.items()]})


@api.get("/overview")
def api_overview():
    return jsonify(data.overview(store()))


@api.get("/servers")
def api_servers():
    return jsonify(data.servers(store(), _page(), filters=_filters(data.server_filters)))


@api.get("/scans")
def api_scans():
    return jsonify(data.scans(store(), _scan_filters(), _page()))


@api.get("/scans/<int:scan_id>")
def api_scan(scan_id: int):
    return jsonify(_scan(scan_id))


@api.get("/scanners")
def api_scanners():
    return jsonify(data.scanners(store(), _page()))


@api.get("/probes")
def api_probes():
    return jsonify(data.probes(store(), filters=_filters(data.probe_filters)))


@api.get("/probes/<int:probe_id>")
def api_probe(probe_id: int):
    return jsonify(_probe(probe_id))


@api.get("/harvesters")
def api_harvesters():
    return jsonify({"harvester_evidence": data.harvester_evidence(store())})
