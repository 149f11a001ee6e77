"""The command line: stdin, errors a user can act on, the JSON document's shape."""
import subprocess
import sys

from test_seed import seed_log


def test_stdin_and_json_schema(tmp_path):
    done = subprocess.run([sys.executable, "-m", "appliance", "analyze", "--json", "--year", "2016", "-"],
                          input=seed_log(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    import json
    doc = json.loads(done.stdout)
    assert set(doc) == {"schema", "generator", "parameters", "input", "scans", "sweeps", "touches", "trigger_endpoints",
                        "scanner_families"}
    assert doc["parameters"] == {"min_ports": 10, "window": 60.0, "min_hosts": 8, "lookback": 300.0,
                                 "family_prefix": 64, "year": 2016, "tz": "UTC", "boot_time": None}
    assert doc["touches"] == []  # no probe ledger in a scratch store: no probe address to touch
    scan = doc["scans"][0]
    assert {"scanner", "scanner_net", "target", "start", "end", "duration", "port_count", "protocols", "packets",
            "ports", "attribution", "candidates"} <= set(scan)
    assert done.stderr.strip() == "read 345 lines: 345 packet records, skipped 0"


def test_errors_are_clear(tmp_path, run_cli):
    code, _, err = run_cli("analyze", tmp_path / "missing.log")
    assert code == 2 and "cannot read" in err and "no such file" in err
    log = tmp_path / "k.log"
    log.write_text(seed_log())
    code, _, err = run_cli("analyze", "--tz", "Nowhere/Else", log)
    assert code == 2 and "unknown time zone" in err
    code, _, err = run_cli("analyze", "--min-ports", "1", log)
    assert code == 2 and "at least 2" in err


def test_thresholds_change_what_counts_as_a_scan(tmp_path, analyze_json):
    log = tmp_path / "k.log"
    log.write_text(seed_log())
    assert len(analyze_json("--year", "2016", "--min-ports", "115", log)[0]["scans"]) == 1   # only the 117-port one
    assert analyze_json("--year", "2016", "--lookback", "6", log)[0]["scans"][0]["candidates"] != []
    short = analyze_json("--year", "2016", "--lookback", "3", log)[0]  # every trigger is 4 s or more before
    assert {s["attribution"] for s in short["scans"]} == {"unattributed"}


def test_synthlog_then_analyze_as_make_demo_does(tmp_path, run_cli):
    log, truth = tmp_path / "demo.log", tmp_path / "truth.json"
    code, _, err = run_cli("synthlog", "--lines", "3000", "--seed", "7", "-o", log, "--truth", truth)
    assert code == 0 and "triggered scans" in err
    code, out, err = run_cli("analyze", "--db", tmp_path / "demo.sqlite", log)
    assert code == 0
    assert "TRIGGER ENDPOINTS" in out and "SCAN DETECTED" in out and "SUSPECTS" not in out
    assert "2001:db8:f00d:" in out.split("TRIGGER ENDPOINTS")[1].splitlines()[2]  # a harvester leads the table


def test_a_firewall_prefix_that_is_no_lan_is_refused_before_anything_is_touched(run_cli):
    for prefix, words in (("notaprefix", "'notaprefix' has no prefix length"),
                          ("2001:db8::/300", "'2001:db8::/300' is not a network like 2001:db8:1::/64"),
                          ("::/0", "::/0 is wider than one site")):
        code, out, err = run_cli("firewall", "apply", "--prefix", prefix)
        assert code == 2 and f"argument --prefix: {words}" in err and "Traceback" not in err
        assert out == ""


def test_a_year_that_makes_no_real_dates_is_refused(tmp_path, run_cli):
    log = tmp_path / "k.log"
    log.write_text(seed_log())
    for year, words in (("0", "must be a year from 1970 to 9999, got 0"),
                        ("99999", "must be a year from 1970 to 9999, got 99999"),
                        ("MMXXVI", "must be a year like 2026, got 'MMXXVI'")):
        code, out, err = run_cli("analyze", "--year", year, log)
        assert code == 2 and f"argument --year: {words}" in err and out == ""


def test_empty_lines_are_read_lines_and_a_reversed_log_is_said_to_be_out_of_order(tmp_path, run_cli):
    lines = seed_log().splitlines()
    log = tmp_path / "k.log"
    log.write_text("\n".join(lines[:100]) + "\n\n\n" + "\n".join(lines[100:]) + "\n")
    code, out, err = run_cli("analyze", "--year", "2016", log)
    assert code == 0 and err.strip() == "read 347 lines (2 empty): 345 packet records, skipped 0"
    # `tac`: every record is before the one read earlier. The attributions that time order gave are
    # lost, and the warning says so instead of leaving the user with a quietly poorer report.
    reversed_log = tmp_path / "tac.log"
    reversed_log.write_text("\n".join(reversed(lines)) + "\n")
    code, _, err = run_cli("analyze", "--year", "2016", reversed_log)
    assert code == 0
    count = int(err.split("warning: ")[1].split()[0])
    assert count > len(lines) // 2 and "out of time order" in err and "give the logs in time order" in err
    code, out, err = run_cli("analyze", "--json", "--year", "2016", reversed_log)
    import json
    assert json.loads(out)["input"]["out_of_order"] == count


def test_a_users_mistakes_get_one_line_and_the_documented_status(tmp_path, run_cli):
    code, _, err = run_cli("analyze", tmp_path)
    assert code == 2 and "is a directory: give the log files in it" in err and "Errno" not in err
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    code, out, err = run_cli("analyze", passwd)
    assert code == 0 and "0 scans" in out
    assert "warning: this input holds no firewall log records" in err
    code, _, err = run_cli("serve", "--bind", "127.0.0.1:99999")
    assert code == 2 and "'127.0.0.1:99999' is not an address and port" in err and "Traceback" not in err
    code, _, err = run_cli("status", "--config", tmp_path / "missing.toml")
    assert code == 2 and "no such file" in err


def test_a_closed_pipe_ends_quietly(tmp_path):
    log = tmp_path / "k.log"
    log.write_text(seed_log() * 20)
    reader = subprocess.Popen([sys.executable, "-m", "appliance", "analyze", "--year", "2016", str(log)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.read(10)
    reader.stdout.close()  # as `| head -c 10` does
    err = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 141 and "Errno" not in err and "Traceback" not in err


def test_every_option_has_help_and_every_command_an_example(run_cli):
    for command in ("analyze", "run", "status", "firewall", "serve", "synthlog"):
        code, out, _ = run_cli(command, "--help")
        assert code == 0 and ("example: harvestwatch" in out or "example: sudo harvestwatch" in out), command
        # argparse prints an option's help after two spaces, or on the next line, indented deeper.
        lines = out.split("options:")[1].split("example:")[0].splitlines()
        bare = [line for n, line in enumerate(lines) if line.startswith("  -") and "  " not in line.strip()
                and not (n + 1 < len(lines) and lines[n + 1].startswith("      ")
                         and not lines[n + 1].strip().startswith("-"))]
        assert not bare, (command, bare)
