# HarvestWatch: `make demo` and `make test` install what they need on a fresh Debian machine (root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := iptables iproute2 python3-venv radvd chrony dnsmasq-base nmap chromium wrk mmdebstrap
WORK ?= /tmp/harvestwatch-demo
DEMO_PORT ?= 8080
BENCH_LINES ?= 1000000

.PHONY: demo demo-offline test bench bench-live bench-web system-deps venv clean

# Debian packages the tests use (ip6tables for the real-kernel test). Skipped where present.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "note: not root, cannot install:$$missing (tests that need them will skip)"; fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

test: system-deps venv
	$(BIN)/python -m pytest -q

# The whole appliance against the network-namespace lab (router, pool DNS, honest NTP servers, a
# harvester and its scanners), until Ctrl-C; everything stays inside namespaces in 2001:db8::/32.
demo: system-deps venv
	$(BIN)/python -m tests.lab.demo --work $(WORK) --port $(DEMO_PORT)

# The analyzer alone on a synthetic appliance log (no root, no namespaces).
demo-offline: venv
	mkdir -p $(WORK)
	$(BIN)/harvestwatch synthlog --lines 20000 --seed 7 -o $(WORK)/demo-kern.log --truth $(WORK)/demo-truth.json
	$(BIN)/harvestwatch analyze --db $(WORK)/demo.sqlite $(WORK)/demo-kern.log | tee $(WORK)/demo-report.txt | \
	  sed -n '/^SUSPECTS/,$$p'
	@echo "Full report: $(WORK)/demo-report.txt   evidence store: $(WORK)/demo.sqlite"

bench: venv
	$(BIN)/python tests/bench/bench_analyze.py --lines $(BENCH_LINES) --work $(WORK)

# The live daemon in the lab under a scan flood: RSS, CPU, probe addresses held.
bench-live: system-deps venv
	$(BIN)/python tests/bench/bench_live.py --work $(WORK)

# The status page under load: p95 latency of Overview, Servers and /api/scans over 100k scans (loopback).
bench-web: system-deps venv
	$(BIN)/python tests/bench/bench_web.py --work $(WORK) --scans 100000

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
