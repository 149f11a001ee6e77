#!/bin/sh
# `make vagrant-test`: the Vagrantfile end to end on this host. Validate, boot the arm64 VM,
# provision it with ansible/site.yml, provision again (must change nothing), check the services
# on the running VM, destroy it. Prints the time of each step.
set -eu
cd "$(dirname "$0")/.."
export VAGRANT_DEFAULT_PROVIDER=libvirt
log=build/vagrant/provision.log
mkdir -p build/vagrant
now() { date +%s; }
cleanup() { vagrant destroy -f >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

vagrant validate
cleanup
t0=$(now); vagrant up --no-provision; t1=$(now)
echo "vagrant-test: VM up (SSH answering) in $((t1 - t0)) s"
# pip in the VM reaches PyPI through this host's network: let it trust the CAs this host added
# locally (a TLS-intercepting proxy's, say), as the chroot build does.
for crt in /usr/local/share/ca-certificates/*.crt; do
    [ -e "$crt" ] || continue
    vagrant upload "$crt" "/tmp/$(basename "$crt")" >/dev/null
    vagrant ssh -c "sudo install -m 0644 /tmp/$(basename "$crt") /usr/local/share/ca-certificates/ && sudo update-ca-certificates >/dev/null"
done
tc=$(now)
echo "vagrant-test: host CAs trusted in $((tc - t1)) s"
vagrant provision | tee "$log"; t2=$(now)
echo "vagrant-test: first provisioning in $((t2 - tc)) s"
vagrant provision | tee "$log.again"; t3=$(now)
echo "vagrant-test: second provisioning in $((t3 - t2)) s"
grep -E 'default +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0' "$log.again" \
    || { echo "vagrant-test: the second provisioning changed something" >&2; exit 1; }

# One look at the units: printed, kept, and judged by systemctl's own exit status (all active).
services=0
vagrant ssh -c 'uname -m; systemctl is-system-running --wait; systemctl is-active harvestwatch.service harvestwatch-page.service chrony.service avahi-daemon.service' \
    > build/vagrant/services.txt || services=$?
cat build/vagrant/services.txt
[ "$services" = 0 ] || { echo "vagrant-test: not every appliance unit is active" >&2; exit 1; }
vagrant ssh -c 'sudo /opt/harvestwatch/venv/bin/harvestwatch firewall verify' \
    || { echo "vagrant-test: the firewall is not in force" >&2; exit 1; }
vagrant ssh -c 'sudo /opt/harvestwatch/venv/bin/harvestwatch status | head -n 12'
vagrant ssh -c 'python3 -c "import urllib.request as u; print(\"page: HTTP\", u.urlopen(\"http://127.0.0.1/\", timeout=30).status)"' \
    || { echo "vagrant-test: the status page does not answer" >&2; exit 1; }
echo "vagrant-test: passed (up $((t1 - t0)) s, provision $((t2 - tc)) s, re-provision $((t3 - t2)) s)"
