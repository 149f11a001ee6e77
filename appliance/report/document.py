"""The `--json` document, written scan by scan so that memory stays flat on large inputs."""
from __future__ import annotations

import json
from typing import TextIO

from ..words import ScanKind
from .evidence import (
    SCHEMA_VERSION,
    family_json,
    scan_documents,
    scan_json,
    scanner_families,
    suspect_document,
    touch_documents,
)


def write_json(out: TextIO, store, *, parameters: dict, result) -> None:
    """The document of the scans selected in `store` (Store.select_scans)."""
    head = {
        "schema": SCHEMA_VERSION,
        "generator": "harvestwatch analyze",
        "parameters": parameters,
        "input": {"lines": result.lines, "empty_lines": result.empty, "out_of_order": result.out_of_order,
                  "records": result.records,
                  "skipped": dict(sorted(result.skipped.items())),
                  "skipped_total": sum(result.skipped.values())},
    }
    out.write(json.dumps(head)[:-1])
    for name, kind in (("scans", ScanKind.PORTSCAN), ("sweeps", ScanKind.SWEEP)):
        out.write(f', "{name}": [')
        for n, (row, candidates) in enumerate(scan_documents(store, kind)):
            out.write((", " if n else "") + scan_json(row, candidates))
        out.write("]")
    out.write(', "touches": ' + json.dumps(touch_documents(store, result.touches)))
    out.write(', "trigger_endpoints": ' + json.dumps([suspect_document(row) for row in store.selected_suspects()]))
    out.write(', "scanner_families": [')
    for n, family in enumerate(scanner_families(store)):
        out.write(", " if n else "")
        out.writelines(family_json(store, family))
    out.write("]")
    out.write("}\n")
