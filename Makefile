# iact-ops: the two commands are `make lab` and `make test` (see README.md).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
BIN       := $(VENV)/bin
CASSANDRA_VERSION ?= 5.0.8
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_ROLES_PATH := $(CURDIR)/roles
export ANSIBLE_FORCE_COLOR ?= 0
export IACT_CACHE ?= $(HOME)/.cache/iact-ops
export IACT_CASSANDRA_ARCHIVE ?= $(IACT_CACHE)/cassandra/apache-cassandra-$(CASSANDRA_VERSION)-bin.tar.gz
# The whole stack first (every integration suite runs against it), then the per-role scenarios.
SCENARIOS ?= default $(filter-out default,$(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# --- controller tooling -------------------------------------------------------------------------
$(VENV)/.stamp: requirements.txt agents/pyproject.toml web/pyproject.toml
	@[[ -x $(PY) ]] || python3 -m venv $(VENV)
	@echo "venv: installing pinned tooling (requirements.txt) and the agents package"
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	@$(BIN)/pip install -q --disable-pip-version-check --no-deps -e agents
	@$(BIN)/pip install -q --disable-pip-version-check --no-deps -e web
	@touch $@

.PHONY: venv
venv: $(VENV)/.stamp ## Create the controller venv from the pinned requirements

.PHONY: secrets
secrets: ## Generate the lab secrets (ignored file; existing values kept)
	@scripts/lab-secrets.sh

.PHONY: cassandra-archive
cassandra-archive: ## Assemble the Cassandra release archive from Maven Central into the cache
	@scripts/cassandra-archive.sh $(CASSANDRA_VERSION) >/dev/null

.PHONY: browser
browser: ## Debian's chromium, chromium-driver, certutil (browser tests) and hey (bench/web); nothing downloads a browser
	@scripts/lab.sh browser

.PHONY: engine
engine: ## Install docker.io/debootstrap if missing, start dockerd, build the base image
	@scripts/lab.sh deps
	@scripts/lab.sh image

# --- the lab ------------------------------------------------------------------------------------
.PHONY: lab
FORCE ?= 0
lab: engine venv secrets cassandra-archive ## Create the lab hosts and deploy the whole stack (FORCE=1: even if deployed)
	@scripts/lab.sh up
	@IACT_LAB_FORCE=$(FORCE) scripts/lab.sh deploy
	@scripts/lab-summary.sh

.PHONY: lab-down
lab-down: ## Remove the lab hosts (and nothing else)
	@scripts/lab.sh down

.PHONY: drill
drill: ## DR drill on the lab: backup, disaster, restore, verify; prints RPO, RTO and the report path
	@$(PY) drill/drill.py --inventory inventory/lab --report-dir .lab/reports

.PHONY: rollout
rollout: venv ## Canary rollout of the agents to the lab: canary, a quarter, the rest; health gates; auto rollback (ROLLOUT_ARGS=--help)
	@$(PY) drill/rollout.py --inventory inventory/lab $(ROLLOUT_ARGS)

.PHONY: audit
AUDIT_REPORTS ?= .lab/reports/audit
audit: venv ## Run the compliance and security audit on every lab host now and print one table (exit 1: a high failure)
	@rm -rf $(AUDIT_REPORTS)
	@out=$$($(BIN)/ansible-playbook -i inventory/lab playbooks/ops/audit_now.yml \
	  -e audit_report_dir=$(CURDIR)/$(AUDIT_REPORTS) 2>&1) || { echo "$$out"; exit 1; }
	@$(BIN)/iact-agent audit report $(AUDIT_REPORTS)/*.json

.PHONY: bench
bench: venv ## Performance on the lab (after make lab; hold the lab lock): results in bench/results/ (BENCH_ARGS=--help)
	@$(PY) bench/bench.py $(BENCH_ARGS)

.PHONY: lab-status
lab-status: ## Print the cluster status of the lab
	@scripts/lab-summary.sh

# --- tests --------------------------------------------------------------------------------------
# Standalone Python (installed on hosts by the roles, or run beside them), each checked by mypy --strict on its own
# (files without a .py suffix would all be "__main__" in one run). Every other Python file belongs to a package
# with its own mypy configuration (agents, web, drill); ruff and shellcheck take every file of their kind
# (scripts/source-files.sh), so a new file cannot fall outside the gates (tests/repo/test_gates.py).
STANDALONE_PY := roles/backup/files/usr/local/lib/iact-backup/backupdir.py \
                 roles/backup/files/usr/local/lib/iact-backup/cassandra_schema.py \
                 roles/backup/files/usr/local/sbin/iact-backup-target \
                 roles/backup/filter_plugins/backup_keys.py \
                 roles/cassandra/library/cassandra_cql_state.py \
                 playbooks/test_plugins/real_secret.py \
                 roles/mysql/files/usr/local/lib/iact/mysql-migrate \
                 files/sample-data/generate.py

.PHONY: lint
lint: venv shellcheck ## yamllint, ansible-lint (production), ruff, mypy, shellcheck over every file of their kind
	@echo "== yamllint";     $(BIN)/yamllint --strict .
	@echo "== ansible-lint"; $(BIN)/ansible-lint --profile production
	@echo "== ruff";         $(BIN)/ruff check $$(scripts/source-files.sh python)
	@echo "== mypy";         (cd agents && ../$(BIN)/mypy) && (cd drill && ../$(BIN)/mypy --config-file mypy.ini drill.py pyinfra_fleet.py rollout.py inventory.py remote/cql_markers.py)
	@echo "== mypy (standalone)"; for f in $(STANDALONE_PY); do $(BIN)/mypy --config-file mypy-standalone.ini "$$f" || exit 1; done
	@echo "== mypy (web)";   (cd web && ../$(BIN)/python tests/typecheck.py)
	@echo "== shellcheck";   shellcheck $$(scripts/source-files.sh shell)

.PHONY: shellcheck
shellcheck: ## Install shellcheck from Debian when it is missing (make lint needs it)
	@command -v shellcheck >/dev/null || { echo "shellcheck: installing Debian's package"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >/dev/null || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >/dev/null; }; }

.PHONY: unit
unit: venv ## Agent unit tests and repository guard tests (no services needed)
	@IACT_STRICT_SKIPS=1 $(BIN)/pytest -q agents/tests/unit tests/unit tests/repo web/tests/unit

.PHONY: check
check: lint unit ## The quick subset: lint + unit

.PHONY: molecule
molecule: venv engine secrets cassandra-archive browser ## Every molecule scenario (stack first), each action timed
	@for s in $(SCENARIOS); do scripts/stage.sh molecule $$s || exit 1; done

# Every stage is timed (scripts/stage.sh) and the table is printed at the end, passed or failed.
.PHONY: test
test: venv ## The whole suite: lint, unit, agent tests against real services, molecule scenarios
	@scripts/stage.sh reset
	@trap 'scripts/stage.sh report' EXIT; \
	  scripts/stage.sh run lint $(MAKE) --no-print-directory lint; \
	  scripts/stage.sh run unit $(MAKE) --no-print-directory unit; \
	  scripts/stage.sh run "lab engine, image, secrets, Cassandra archive" \
	    $(MAKE) --no-print-directory engine secrets cassandra-archive; \
	  $(MAKE) --no-print-directory molecule
