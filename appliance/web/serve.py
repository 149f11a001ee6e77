"""`harvestwatch serve`: the status page under gunicorn, sized for a Raspberry Pi.

Two worker processes with a few threads each: the page is a handful of SQLite reads, so two
cores are kept busy without the memory of many processes; a worker that dies is replaced.
"""
from __future__ import annotations

import os
import sys

from gunicorn.app.base import BaseApplication

from . import create_app


class PageServer(BaseApplication):
    def __init__(self, app, options: dict):
        self.application, self.options = app, options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application

    @staticmethod
    def settings_known() -> set[str]:
        from gunicorn.config import KNOWN_SETTINGS
        return {setting.name for setting in KNOWN_SETTINGS}


def main(args) -> int:
    from ..config import ConfigError, store_given
    try:
        db_path = store_given(args.db, args.config)
    except ConfigError as exc:
        print(f"harvestwatch serve: {exc}", file=sys.stderr)
        return 2
    if not os.path.exists(db_path):
        print(f"harvestwatch serve: note: no store at {db_path} yet; the page says so until the daemon writes one",
              file=sys.stderr)
    try:
        app = create_app(db_path, extra_lan=tuple(args.lan))
    except ValueError as exc:
        print(f"harvestwatch serve: --lan: {exc}", file=sys.stderr)
        return 2
    options = {"bind": args.bind, "workers": args.workers, "threads": args.threads, "worker_class": "gthread",
               "timeout": 30, "graceful_timeout": 10, "accesslog": "-" if args.access_log else None,
               "errorlog": "-", "proc_name": "harvestwatch-page"}
    if "control_socket_disable" in PageServer.settings_known():
        options["control_socket_disable"] = True  # gunicorn 24+: no socket in $HOME (the unit has none)
    PageServer(app, options).run()
    return 0
