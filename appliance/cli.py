"""The `harvestwatch` command."""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict

from . import __version__
from .analyze import Settings, analyze
from .parse.netfilter import summarize_skips
from .report.document import write_json
from .report.text import write_text
from .settings import BY_KEY, CONFIG_PATH
from .store.db import Store, StoreError


def _year(text: str) -> int:
    # Syslog stamps carry no year; the one given must make real dates (the clock is Unix time).
    try:
        year = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a year like 2026, got {text!r}") from None
    if not 1970 <= year <= 9999:
        raise argparse.ArgumentTypeError(f"must be a year from 1970 to 9999, got {year}")
    return year


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harvestwatch", description="Catch the servers that harvest IPv6 "
                                     "addresses, and the scanners they feed.")
    parser.add_argument("--version", action="version", version=f"harvestwatch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    a = commands.add_parser("analyze", help="find scans and their trigger packets in existing kernel logs",
                            description="Read netfilter LOG lines (kern.log, syslog, journalctl -k, /dev/kmsg "
                            "dumps; plain or gzip; '-' for stdin), detect scans and sweeps, and list the "
                            "packets sent from each scanned address before its scan.",
                            epilog="example: harvestwatch analyze --db evidence.sqlite /var/log/kern.log*",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("files", nargs="+", metavar="FILE",
                   help="log files, oldest to newest in any order (rotated .gz too); '-' reads stdin")
    a.add_argument("--json", action="store_true", help="write one JSON document instead of the text report")
    a.add_argument("--db", metavar="PATH", help="keep the evidence in this SQLite store (created if missing)")
    a.add_argument("--year", type=_year, help="year of the first syslog line without one (default: year of the "
                   "file's last modification, the year before for months after it)")
    a.add_argument("--tz", default="UTC", metavar="ZONE", help="zone of timestamps without one (default UTC)")
    for key in ("detect.min_ports", "detect.window", "detect.min_hosts", "detect.lookback", "detect.family_prefix"):
        setting = BY_KEY[key]
        a.add_argument("--" + setting.name.replace("_", "-"), type=setting.parse_option, default=setting.default,
                       metavar="N" if isinstance(setting.default, int) else "S",
                       help=f"{setting.help} (default {setting.default:g})")
    a.add_argument("--boot-time", type=float, metavar="EPOCH",
                   help="boot time for /dev/kmsg and dmesg records (default: this machine's)")

    r = commands.add_parser("run", help="the live appliance: firewall, NFLOG capture, detection, prober",
                            description="Run the appliance daemon (as its systemd unit does).",
                            epilog="example: sudo harvestwatch run --config /etc/harvestwatch/config.toml",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--config", default=CONFIG_PATH, metavar="PATH",
                   help=f"configuration file (default {CONFIG_PATH})")

    s = commands.add_parser("status", help="the daemon's state and the verdict per NTP server",
                            description="Read the store and print whether the appliance is working and "
                            "what it found per NTP server (harvester / suspect / clean / unprobed).",
                            epilog="example: harvestwatch status --json | "
                            "jq '.servers[] | select(.verdict==\"harvester\")'",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    where = s.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="PATH", help="the store to read (default: the one the config names)")
    where.add_argument("--config", default=CONFIG_PATH, metavar="PATH",
                       help=f"the daemon's configuration file, for where its store is (default {CONFIG_PATH})")
    s.add_argument("--json", action="store_true", help="one JSON document")

    f = commands.add_parser("firewall", help="apply, verify, show or remove the HarvestWatch ruleset",
                            description="The ip6tables ruleset (iptables-legacy) in this network namespace.",
                            epilog="example: sudo harvestwatch firewall show",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    from .host import firewall
    firewall.add_arguments(f)

    w = commands.add_parser("serve", help="the status page (Flask under gunicorn), LAN-only",
                            description="Serve the status page over the store, read-only.",
                            epilog="example: harvestwatch serve --db evidence.sqlite --bind 127.0.0.1:8080",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    from .web.options import add_arguments as serve_arguments
    serve_arguments(w)

    b = commands.add_parser("backup", help="copy the store and the configuration into one file, for a new card",
                            description="Write one .tar.gz with a consistent copy of the store (even while the "
                            "daemon runs) and the configuration file, for `harvestwatch restore`.",
                            epilog="examples: sudo harvestwatch backup /root/harvestwatch.tar.gz\n"
                            "          ssh hwadmin@harvestwatch.local sudo harvestwatch backup - > harvestwatch.tar.gz",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("file", metavar="FILE", help="the backup to write ('-' for standard output)")
    _store_options(b)

    t = commands.add_parser("restore", help="put a backup's store and configuration in place (the daemon stopped)",
                            description="Check a backup made by `harvestwatch backup` (checksums, a store this "
                            "release can read, a valid configuration), then put it in place; what it replaces is "
                            "kept beside it as *.before-restore. An older store is migrated.",
                            epilog="example: sudo systemctl stop harvestwatch; sudo harvestwatch restore "
                            "harvestwatch.tar.gz; sudo systemctl start harvestwatch",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("file", metavar="FILE", help="the backup to restore ('-' for standard input)")
    _store_options(t)

    # Listed for --help; its own parser (appliance.synthlog) reads its options.
    commands.add_parser("synthlog", help="write a synthetic appliance log with known ground truth (demo, bench)")
    return parser


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=CONFIG_PATH, metavar="PATH",
                        help=f"the daemon's configuration file, and where its store is (default {CONFIG_PATH})")
    parser.add_argument("--db", metavar="PATH", help="the store (default: the one the configuration names)")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["synthlog"]:
        from .synthlog import main as synth_main
        try:
            return synth_main(argv[1:])
        except SystemExit as exc:  # --help, or a bad option
            return exc.code
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad option (argparse said which): its exit status
        return exc.code
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (`| head`): as other tools, stop quietly with SIGPIPE's status.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool a closed pipe ended


def _run(args) -> int:
    if args.command == "run":
        from .daemon import main as run_daemon
        return run_daemon(args)
    if args.command == "status":
        return run_status(args)
    if args.command == "serve":
        from .web.serve import main as serve
        return serve(args)
    if args.command == "firewall":
        from .host import firewall
        return firewall.main(args)
    if args.command in ("backup", "restore"):
        return run_backup(args) if args.command == "backup" else run_restore(args)
    return run_analyze(args)


def run_backup(args) -> int:
    from .backup import BackupError, write_backup
    from .config import ConfigError, store_given
    try:
        db_path = store_given(args.db, args.config)
    except ConfigError as exc:
        return fail(str(exc))
    try:
        if args.file == "-":
            manifest = write_backup(sys.stdout.buffer, db_path, args.config)
        else:
            written = args.file + ".partial"
            with open(written, "wb") as out:
                manifest = write_backup(out, db_path, args.config)
                out.flush()
                os.fsync(out.fileno())
            os.replace(written, args.file)
    except BackupError as exc:
        if args.file != "-" and os.path.exists(args.file + ".partial"):
            os.unlink(args.file + ".partial")
        return fail(str(exc))
    except OSError as exc:
        return fail(f"cannot write {args.file}: {exc.strerror or exc}")
    print(f"harvestwatch: backed up {db_path} (schema {manifest['schema']})"
          + (f" and {args.config}" if "config.toml" in manifest["files"] else " (no configuration file)")
          + (f" to {args.file}" if args.file != "-" else ""), file=sys.stderr)
    return 0


def run_restore(args) -> int:
    import tomllib

    from .backup import BackupError, restore
    from .config import from_dict, load_given

    def store_path_of(text: str | None, source: str) -> str:
        config = load_given(args.config) if text is None else from_dict(tomllib.loads(text), source=source)
        return config.db_path
    try:
        if args.file == "-":
            done = restore(sys.stdin.buffer, args.config, store_path_of, args.db)
        else:
            with open(args.file, "rb") as source:
                done = restore(source, args.config, store_path_of, args.db)
    except BackupError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"cannot restore {args.file}: {exc.strerror or exc}")
    made = done["manifest"]
    print(f"harvestwatch: restored the store of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(made['created']))} "
          f"(HarvestWatch {made['harvestwatch']}, schema {made['schema']}, now {done['schema']}) to {done['db_path']}"
          + (f" and the configuration to {args.config}" if done["config"] else "")
          + ("; kept what it replaced: " + ", ".join(done["kept"]) if done["kept"] else ""))
    return 0


def fail(message: str) -> int:
    print(f"harvestwatch: {message}", file=sys.stderr)
    return 2


def run_status(args) -> int:
    from .config import ConfigError, store_given
    from .report.status import write_status
    try:
        db_path = store_given(args.db, args.config)
    except ConfigError as exc:
        return fail(str(exc))
    if not os.path.exists(db_path):
        return fail(f"no store at {db_path}: has the daemon run yet?")
    try:
        store = Store(db_path, readonly=True)
        try:
            write_status(sys.stdout, store, as_json=args.json)
        finally:
            store.close()
    except (sqlite3.Error, StoreError) as exc:
        print(f"harvestwatch: store {db_path}: {exc}", file=sys.stderr)
        return 1
    return 0


def run_analyze(args) -> int:
    for path in args.files:
        if path != "-" and os.path.isdir(path):
            return fail(f"{path} is a directory: give the log files in it (e.g. {os.path.join(path, 'kern.log')})")
        if path != "-" and not os.access(path, os.R_OK):
            return fail(f"cannot read {path}: {'no such file' if not os.path.exists(path) else 'permission denied'}")
    settings = Settings(min_ports=args.min_ports, window=args.window, min_hosts=args.min_hosts,
                        lookback=args.lookback, family_prefix=args.family_prefix, year=args.year, tz=args.tz,
                        boot_time=args.boot_time)
    try:
        settings.zone
    except ValueError as exc:
        return fail(str(exc))
    scratch = None
    if args.db:
        db_path = args.db
    else:
        scratch = tempfile.TemporaryDirectory(prefix="harvestwatch-")
        db_path = os.path.join(scratch.name, "analyze.sqlite")
    try:
        store = Store(db_path, scratch=scratch is not None)
        try:
            result = analyze(args.files, store, settings)
            # The reports read this import's scans from the store as they go: memory stays flat.
            store.select_scans(result.scan_ids)
            out = sys.stdout
            if args.json:
                write_json(out, store, parameters=asdict(settings), result=result)
            else:
                write_text(out, store, settings.lookback, result.touches)
            out.flush()
        finally:
            store.close()
    except sqlite3.Error as exc:
        full = "full" in str(exc).lower()
        print(f"harvestwatch: store {db_path}: {exc}"
              + ("; free some space: what was stored before this point is intact" if full else ""), file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise
    except (OSError, StoreError) as exc:
        print(f"harvestwatch: {exc}", file=sys.stderr)
        return 1
    finally:
        if scratch is not None:
            scratch.cleanup()
    print(summarize_skips(result.lines, result.records, result.skipped, result.empty, result.out_of_order),
          file=sys.stderr)
    if not result.records:
        print(f"warning: {'this input holds' if len(args.files) == 1 else 'these inputs hold'} no firewall log "
              "records. HarvestWatch reads the kernel's netfilter LOG lines (ip6tables -j LOG) as kern.log, "
              "syslog, journalctl -k, /dev/kmsg or dmesg write them, plain or gzip", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
