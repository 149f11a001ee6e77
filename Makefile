# HarvestWatch: `make demo` and `make test` install what they need on a fresh Debian machine (root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := iptables iproute2 python3-venv radvd chrony dnsmasq-base nmap chromium wrk mmdebstrap miniupnpd-iptables
WORK ?= /tmp/harvestwatch-demo
DEMO_PORT ?= 8080
DEMO_BIND ?= 127.0.0.1
BENCH_LINES ?= 1000000

# The SD-card image (outside CI: about 20 minutes on 2 cores; see docs/image.md).
IMAGE_APT_PACKAGES := mmdebstrap qemu-user-static binfmt-support dosfstools mtools fdisk xz-utils e2fsprogs zstd \
  qemu-system-arm qemu-efi-aarch64 qemu-utils openssh-client
VAGRANT_APT_PACKAGES := vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients
IMAGE_SSH_KEY ?=
IMAGE_HOSTNAME ?= harvestwatch
IMAGE_SUITE ?= trixie
IMAGE_DIR := build/image
# vagrant-libvirt's QEMU runs as libvirt-qemu and must read the box's kernel: keep boxes out of /root.
export VAGRANT_HOME ?= /var/tmp/harvestwatch-vagrant
VAGRANT_BOX := build/vagrant/harvestwatch-debian-arm64.box
# Python under qemu-user is much faster on a plain ARMv8.0 CPU model (see image_qemu_environment
# in ansible/image/vars.yml, which the bootstrap stage sets for itself).
BUILD_IMAGE := QEMU_CPU=cortex-a57 $(BIN)/ansible-playbook -i localhost, ansible/build-image.yml -e image_suite=$(IMAGE_SUITE)

.PHONY: demo demo-offline test check lint bench bench-live bench-probes bench-web bench-writes system-deps venv clean wheel \
  image image-deps image-boot vagrant-deps vagrant-box vagrant-test

# apt-get install what is missing of a package list (root only; otherwise say what is missing).
define apt_need
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "note: not root, cannot install:$$missing"; fi; \
	fi
endef

# Debian packages the tests use (ip6tables for the real-kernel test). Skipped where present.
system-deps:
	$(call apt_need,$(APT_PACKAGES))

# A C compiler and the Python headers build the parser's one C speed-up (appliance/parse/_speedups.c);
# without them the build goes on and its Python twin runs, several times slower on large logs.
$(STAMP): pyproject.toml setup.py appliance/parse/_speedups.c
	$(call apt_need,gcc python3-dev)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

test: system-deps venv
	$(BIN)/python -m pytest -q

# The quick tier: every test that needs neither root, network namespaces, a browser, Ansible nor a
# root filesystem build (their marks: pyproject.toml). No root needed; under a minute on 2 cores.
check: venv
	$(BIN)/python -m pytest -q -n 2 -m "not (root or netns or browser or ansible or image)"

# ruff (Python), yamllint and ansible-lint (playbooks and roles); tests/test_lint.py runs the same.
lint: venv
	$(BIN)/ruff check appliance tests image
	$(BIN)/yamllint --strict ansible .yamllint
	cd ansible && PATH=$(abspath $(BIN)):$$PATH ansible-lint --offline site.yml build-image.yml \
	  roles/harvestwatch roles/harvestwatch_pi

# The whole appliance against the network-namespace lab (router, pool DNS, honest NTP servers, a
# harvester and its scanners), until Ctrl-C; everything stays inside namespaces in 2001:db8::/32.
demo: system-deps venv
	$(BIN)/python -m tests.lab.demo --work $(WORK) --port $(DEMO_PORT) --bind $(DEMO_BIND)

# The analyzer alone on a synthetic appliance log (no root, no namespaces).
demo-offline: venv
	mkdir -p $(WORK)
	$(BIN)/harvestwatch synthlog --lines 20000 --seed 7 -o $(WORK)/demo-kern.log --truth $(WORK)/demo-truth.json
	$(BIN)/harvestwatch analyze --db $(WORK)/demo.sqlite $(WORK)/demo-kern.log | tee $(WORK)/demo-report.txt | \
	  sed -n '/^TRIGGER ENDPOINTS/,$$p'
	@echo "Full report: $(WORK)/demo-report.txt   evidence store: $(WORK)/demo.sqlite"

bench: venv
	$(BIN)/python tests/bench/bench_analyze.py --lines $(BENCH_LINES) --work $(WORK)

# The live daemon in the lab under a scan flood: RSS, CPU, probe addresses held.
bench-live: system-deps venv
	$(BIN)/python tests/bench/bench_live.py --work $(WORK)

# What many live probe addresses cost (N = 1,000 and 5,000): kernel memory, add/remove time, multicast
# groups, neighbour discovery, the daemon's memory and verdict time; probe.max_live is set from it.
bench-probes: system-deps venv
	$(BIN)/python tests/bench/bench_probe_addresses.py

# What the daemon writes to the SD card a day (a loop-mounted ext4 under its store): quiet, and a busy hour.
bench-writes: system-deps venv
	$(BIN)/python tests/bench/bench_writes.py --work $(WORK)

# The status page under load: p95 latency of Overview, Servers and /api/scans over 100k scans (loopback).
bench-web: system-deps venv
	$(BIN)/python tests/bench/bench_web.py --work $(WORK) --scans 100000

# The appliance as a wheel, for ansible/site.yml (harvestwatch_source) and the Vagrant VM: pure
# Python (without the parser's C leaf), since it is built here for an arm64 Pi.
wheel: venv
	rm -rf dist/harvestwatch-*.whl build/lib build/bdist.*  # setuptools' staging: stale files would ship
	HARVESTWATCH_PURE=1 $(BIN)/pip wheel --quiet --no-deps -w dist .

image-deps:
	$(call apt_need,$(IMAGE_APT_PACKAGES))
	@[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
	@[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64

# Stage 0 (the Debian arm64 root filesystem, ~20 min cold on 2 cores) is cached in /var/tmp/harvestwatch-image.
image: image-deps venv
	$(BUILD_IMAGE) -e image_hostname=$(IMAGE_HOSTNAME) \
	  $(if $(IMAGE_SSH_KEY),-e image_ssh_pubkey_file=$(abspath $(IMAGE_SSH_KEY)))

# Check the built image's boot partition for every Pi model, then boot it under qemu-system-aarch64
# (the virt board, and the raspi3b board from its own boot partition; TCG) and check the appliance on
# each. BOOT_WRITES_MINUTES=30 also measures what the booted image writes to its card.
BOOT_WRITES_MINUTES ?= 0
image-boot: image-deps
	$(PYTHON) image/boot_partition.py $(IMAGE_DIR)/harvestwatch-$(IMAGE_SUITE)-arm64.img
	$(PYTHON) image/boot_check.py --image $(IMAGE_DIR)/harvestwatch-$(IMAGE_SUITE)-arm64.img \
	  --writes-minutes $(BOOT_WRITES_MINUTES)

vagrant-deps: image-deps
	$(call apt_need,$(VAGRANT_APT_PACKAGES))
	image/libvirt_up.sh

# The Vagrant box, from the image build's stage-0 root filesystem (built first if not cached).
vagrant-box: image-deps venv
	$(BUILD_IMAGE) --tags bootstrap
	mkdir -p $(dir $(VAGRANT_BOX))
	image/vagrant_box.sh "$$(ls -t /var/tmp/harvestwatch-image/rootfs-$(IMAGE_SUITE)-arm64-*.tar | head -n1)" $(VAGRANT_BOX)
	vagrant box add --force --name harvestwatch/debian-arm64 $(VAGRANT_BOX)

# The whole Vagrant round: box, up, provision with site.yml, check the services, destroy.
vagrant-test: vagrant-deps vagrant-box wheel
	PATH=$(abspath $(BIN)):$$PATH image/vagrant_test.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
