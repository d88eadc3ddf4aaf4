# Task runner of the phyllome.os collection.
#
#   make run          install everything, converge a bare lab host into a Phyllome OS host, boot the VMs its inventory declares
#   make test         install everything, run every test: sanity, lint, units, docs, build, integration, lab
#   make report       the readiness report (playbooks/host_report.yml) of INVENTORY (default: this machine)
#   make lab-up | lab-down | lab-test   the lab's bare hosts (tests/lab/hosts.sh)
#   make lab-desktop  the desktop edition converged in a lab host (heavy, not in `make test`)
#   make sanity | units | integration | lint | docs | build | ee-check | bench | clean
#   make units-oldest | sanity-oldest   units and sanity on the oldest ansible-core requires_ansible allows
#
# Every target installs what it needs: Debian packages through
# tests/lab/system-deps.sh (as root), Python packages into $(VENV). Both steps
# are stamps, so they are quick once done.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON      ?= python3
VENV        ?= .venv
BUILD       ?= .build
PY_VERSION  := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
BIN         := $(abspath $(VENV))/bin
# ansible-test needs the tree at ansible_collections/<namespace>/<name>/: it
# works on a copy there, refreshed from the files git tracks or would track.
COLL        := $(abspath $(BUILD))/ansible_collections/phyllome/os
# Playbooks, ansible-doc and ansible-lint read the working tree itself through
# a symlinked collections path.
COLLECTIONS := $(abspath $(BUILD))/collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_PYTHON_INTERPRETER_LOCAL := $(BIN)/python
export PATH := $(BIN):$(PATH)
export ANSIBLE_NOCOLOR := 1
export ANSIBLE_FORCE_COLOR := 0

INTEGRATION_TARGETS ?=
SANITY_FLAGS ?=

.PHONY: ansible-test-pip test run deps sysdeps venv tree sanity units integration lint docs docs-check build bench lab-up lab-down clean
.PHONY: test-libvirtd-up test-libvirtd-down isolation-check report lab-test lab-desktop corpus-live

test: sanity sanity-oldest lint units units-oldest docs-check build ee-check corpus-live isolation-check

# The main job: converge a bare lab host into a Phyllome OS host and boot the
# VMs of the lab inventory on it (tests/lab/run.sh; LAB_HOSTS=N for more hosts, SITE_ARGS for
# site.yml). The hosts stay up until `make lab-down`.
LAB_HOSTS ?= 1
SITE_ARGS ?=
run: deps
	LAB_HOSTS=$(LAB_HOSTS) SITE_ARGS="$(SITE_ARGS)" RUN_ARGS="$(RUN_ARGS)" tests/lab/run.sh

# The readiness report alone; INVENTORY and RUN_ARGS point it at a fleet, e.g.
#   ./dev report INVENTORY=inventory.yml RUN_ARGS="-e host_report_dir=/tmp/reports"
INVENTORY ?= playbooks/inventory/localhost.yml
RUN_ARGS ?=

report: deps
	ansible-playbook -i $(INVENTORY) playbooks/host_report.yml $(RUN_ARGS)

deps: sysdeps venv $(COLLECTIONS)/ansible_collections/phyllome/os

sysdeps:
	@tests/lab/system-deps.sh

venv: sysdeps $(VENV)/.stamp

$(VENV)/.stamp: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(COLLECTIONS)/ansible_collections/phyllome/os:
	mkdir -p $(COLLECTIONS)/ansible_collections/phyllome
	ln -sfn $(CURDIR) $@

tree: deps
	rm -rf $(COLL)
	mkdir -p $(COLL)
	git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ $(COLL)/
	@# ansible-test lists content with git from the nearest repository up the
	@# tree; a repository of the copy's own keeps it from asking ours, in which
	@# $(BUILD) is ignored.
	git -C $(COLL) init -q

# ansible-test downloads get-pip.py from a host CI cannot reach; it takes a
# cached copy when there is one, so put our ensurepip-based stand-in there.
ansible-test-pip: venv
	@v=$$(sed -n "s/^ *pip='\([0-9.]*\)',/\1/p" $$($(BIN)/python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py); \
	  test -n "$$v"; dest=$$HOME/.ansible/test/cache/get_pip_$${v//./_}.py; \
	  mkdir -p $$(dirname $$dest); cmp -s tools/get_pip_offline.py $$dest || cp tools/get_pip_offline.py $$dest

sanity: tree ansible-test-pip
	cd $(COLL) && ansible-test sanity --venv --python $(PY_VERSION) --color no $(SANITY_FLAGS)

units: tree
	cd $(COLL) && ansible-test units --local --python $(PY_VERSION) --color no

# The oldest ansible-core that meta/runtime.yml's requires_ansible allows
# (2.17), in a venv of its own: `make units` and `make sanity` run the newest
# this Python takes (requirements.txt), these two the oldest, so the claim is
# tested. Costs here (2 CPUs): the venv ~15 s once, units-oldest ~50 s,
# sanity-oldest ~2.5 min; both are part of `make test`.
OLDEST_VENV ?= .venv-oldest
OLDEST_BIN  := $(abspath $(OLDEST_VENV))/bin

.PHONY: venv-oldest units-oldest sanity-oldest ansible-test-pip-oldest

venv-oldest: sysdeps $(OLDEST_VENV)/.stamp

$(OLDEST_VENV)/.stamp: requirements-oldest.txt
	test -x $(OLDEST_BIN)/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_BIN)/pip install -q --disable-pip-version-check -r requirements-oldest.txt
	touch $@

ansible-test-pip-oldest: venv-oldest
	@v=$$(sed -n "s/^ *pip='\([0-9.]*\)',/\1/p" $$($(OLDEST_BIN)/python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py); \
	  test -n "$$v"; dest=$$HOME/.ansible/test/cache/get_pip_$${v//./_}.py; \
	  mkdir -p $$(dirname $$dest); cmp -s tools/get_pip_offline.py $$dest || cp tools/get_pip_offline.py $$dest

units-oldest: tree venv-oldest
	cd $(COLL) && PATH=$(OLDEST_BIN):$$PATH $(OLDEST_BIN)/ansible-test units --local --python $(PY_VERSION) --color no

sanity-oldest: tree ansible-test-pip-oldest
	cd $(COLL) && PATH=$(OLDEST_BIN):$$PATH $(OLDEST_BIN)/ansible-test sanity --venv --python $(PY_VERSION) --color no $(SANITY_FLAGS)

# The integration tests talk only to the private libvirtd of
# tests/lab/libvirtd.sh (its own namespaces, directories and socket), never to
# the machine's qemu:///system; its URI reaches the targets as the variable
# phyllome_test_uri of tests/integration/integration_config.yml in the copy.
integration: tree test-libvirtd-up
	@# the test guests' cache (tests/guests/) outlives the copy: link it in
	mkdir -p tests/guests/cache
	mkdir -p $(COLL)/tests/guests
	ln -sfn $(CURDIR)/tests/guests/cache $(COLL)/tests/guests/cache
	tests/lab/libvirtd.sh integration-config > $(COLL)/tests/integration/integration_config.yml
	cd $(COLL) && ansible-test integration --local --python $(PY_VERSION) --color no $(INTEGRATION_TARGETS)

# `make test` runs the integration tests beside a stand-in of an admin's
# libvirtd (with a running domain, a network and a pool) and fails unless
# that daemon, its objects and its files come out of the run untouched, the
# private daemon's `down` included (tests/lab/isolation-check.sh). The lab's
# end-to-end test (nspawn hosts with libvirt daemons of their own) runs inside
# the same check.
isolation-check: sysdeps
	tests/lab/isolation-check.sh $(MAKE) --no-print-directory integration lab-test

test-libvirtd-up: sysdeps
	tests/lab/libvirtd.sh up

test-libvirtd-down:
	tests/lab/libvirtd.sh down

# The lab's bare hosts (tests/lab/hosts.sh): systemd-nspawn containers, each
# in a network namespace of its own, fed from a local package repository.
lab-up: deps
	tests/lab/hosts.sh up $(LAB_HOSTS)

# Ends only what the lab and the tests started (recorded pids), keeps caches.
lab-down: test-libvirtd-down
	tests/lab/hosts.sh down
	tests/lab/hosts.sh check-clean

# Real-world domain XMLs (libvirt 9.0's own test inputs, and ~230 made at
# test time by virt-install --print-xml and from formatdomain) through the
# domain module's flow on a private unprivileged libvirtd of the runner's
# own: a second run reports no change, check mode predicts, drift (one kind
# per input) is seen and undone. Prints a summary line with the counts.
corpus-live: deps
	$(BIN)/python tests/fixtures/domain_corpus/run_corpus.py run --drift --check

# The lab end to end through ansible-runner: bare host, check mode, bad
# input, converge, converge again (changed=0), check mode (changed=0), a UEFI
# + TPM VM boots inside, teardown leaves nothing. Then two linked hosts
# (test_lab_fleet.py): VMs move between them over qemu+ssh.
lab-test: deps
	pytest -p no:cacheprovider -v tests/lab/test_lab.py tests/lab/test_lab_fleet.py

# The desktop edition (GNOME minimal + virt-manager) converged for real, twice,
# then in check mode, in a lab of its own (.build/lab-desktop). Heavy (a 404 MB
# repository once, then about 10 min here with teardown), so not part of `make test`: tests/lab/README.md.
lab-desktop: deps
	pytest -p no:cacheprovider -v tests/lab/test_lab_desktop.py

lint: deps
	ansible-lint --profile production --offline

# docs/ is generated from the modules' own DOCUMENTATION; docs-check fails
# when the committed copy disagrees with what ansible-doc would show.
# execution-environment.yml through `ansible-builder create` (offline, ~3 s):
# the context must carry the collection and its requirements (tests/ee/check.sh).
.PHONY: ee-check
ee-check: build
	tests/ee/check.sh $(BUILD)/dist

docs: deps
	tools/docs.sh

docs-check: deps
	tools/docs.sh --check

build: deps
	rm -rf $(BUILD)/dist $(BUILD)/installed
	ansible-galaxy collection build --force --output-path $(BUILD)/dist .
	ANSIBLE_COLLECTIONS_PATH=$(abspath $(BUILD))/installed \
	  ansible-galaxy collection install --offline --no-deps --force -p $(BUILD)/installed $(BUILD)/dist/phyllome-os-*.tar.gz
	@# ansible-doc exits 0 on a plugin it cannot load: look for the rendered page.
	ANSIBLE_COLLECTIONS_PATH=$(abspath $(BUILD))/installed ansible-doc phyllome.os.host_info 2>&1 \
	  | tee $(BUILD)/host_info.txt | grep '^> MODULE phyllome.os.host_info' >/dev/null || { cat $(BUILD)/host_info.txt; exit 1; }
	@# the role's argument spec is its manual too
	ANSIBLE_COLLECTIONS_PATH=$(abspath $(BUILD))/installed ansible-doc -t role phyllome.os.host 2>&1 \
	  | tee $(BUILD)/host_role.txt | grep 'phyllome_host_package_sources' >/dev/null || { cat $(BUILD)/host_role.txt; exit 1; }
	@echo "build: tarball installs and ansible-doc renders from it"

bench: deps test-libvirtd-up
	$(BIN)/python bench/run.py $(BENCH)

clean:
	rm -rf $(BUILD) $(VENV)
