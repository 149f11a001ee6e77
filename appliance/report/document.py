"""The `--json` document, written scan by scan so that memory stays flat on large inputs."""
from __future__ import annotations

import json
from typing import TextIO

from .evidence import SCHEMA_VERSION, scan_documents, scan_json, scanner_families, suspect_document


def write_json(out: TextIO, store, scan_rows, suspect_rows, *, parameters: dict, result) -> None:
    head = {
        "schema": SCHEMA_VERSION,
        "generator": "harvestwatch analyze",
        "parameters": parameters,
        "input": {"lines": result.lines, "records": result.records,
                  "skipped": dict(sorted(result.skipped.items())),
                  "skipped_total": sum(result.skipped.values())},
    }
    out.write(json.dumps(head)[:-1])
    for name, kind in (("scans", "portscan"), ("sweeps", "sweep")):
        out.write(f', "{name}": [')
        rows = [row for row in scan_rows if row["kind"] == kind]
        for n, (row, candidates) in enumerate(scan_documents(store, rows)):
            out.write((", " if n else "") + scan_json(row, candidates))
        out.write("]")
    out.write(', "suspects": ' + json.dumps([suspect_document(row) for row in suspect_rows]))
    out.write(', "scanner_families": ' + json.dumps(scanner_families(scan_rows)))
    out.write("}\n")
