# talkbook: make demo · make test · make validate · make report · make due · make bench · make messages
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint validate report due bench messages clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## demo: build a fictional workspace under build/demo and run the whole job on it
demo: $(STAMP)
	rm -rf build/demo build/demo.keys
	$(BIN)/talkbook demo build/demo

## test: ruff and mypy, then the whole test suite
test: $(STAMP) lint
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check tools tests
	$(BIN)/ruff format --check tools tests
	$(BIN)/mypy

# The workspace the workspace targets use: WORKSPACE=…; else this folder when it is one (after
# `talkbook init .`); else the demo's, build/demo, read with its custodian's key. The identity:
# IDENTITY=…, else TALKBOOK_IDENTITY, else ~/.config/talkbook/identity.txt.
ifeq ($(WORKSPACE)$(wildcard talkbook.toml),)
  ifneq ($(wildcard build/demo/talkbook.toml),)
    WORKSPACE := build/demo
    ifeq ($(IDENTITY)$(TALKBOOK_IDENTITY),)
      IDENTITY := build/demo.keys/P-01.txt
    endif
  endif
endif
TALKBOOK := $(BIN)/talkbook $(if $(WORKSPACE),--workspace $(WORKSPACE)) $(if $(IDENTITY),--identity $(IDENTITY))

## validate: check every file of the workspace (this folder, else build/demo; or WORKSPACE=…)
validate: $(STAMP)
	$(TALKBOOK) validate

## report: every report of the workspace, every format, into its build/reports/ (owner-only)
report: $(STAMP)
	$(TALKBOOK) report --all

## due: every unmet obligation, most urgent first (fails when something is overdue)
due: $(STAMP)
	$(TALKBOOK) due

## bench: timings of the main operations, with the floor measured in the same run
bench: $(STAMP)
	$(BIN)/python -m talkbook.bench

## messages: extract every message into locale/talkbook.pot, update the zh_CN and en catalogs,
## compile them (.mo, committed and shipped); then translate what is new in zh_CN and run again
LOCALE := tools/talkbook/locale
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o $(LOCALE)/talkbook.pot --project=talkbook \
	  --version=0.1 --no-location --sort-output --add-comments=TRANSLATORS: .
	$(BIN)/pybabel update -i $(LOCALE)/talkbook.pot -d $(LOCALE) -D talkbook --ignore-obsolete
	$(BIN)/pybabel compile -d $(LOCALE) -D talkbook --statistics

clean:
	rm -rf build $(VENV)
