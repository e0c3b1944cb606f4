# The README's two commands. Both bootstrap their own tools: a fresh machine needs only python3.
PYTHON ?= python3
TOOLS := .venv-tools
TOX := $(TOOLS)/bin/tox
# one tox environment per framework folder (conformance/frameworks/<name>/), by discovery
BACKEND_ENVS := $(shell $(PYTHON) -m conformance.frameworks names)

.PHONY: report test clean

$(TOX):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q "tox>=4.11"

## report: build every backend environment, run the bundled cases, write reports/index.html
report: $(TOX)
	tools/build-envs $(TOX) $(BACKEND_ENVS) report
	$(TOX) run -e report

## Both build their tox environments first (tools/build-envs: one retry per environment, and a
## check that each backend environment finds its framework), so an install failure stops the run
## at once with pip's message instead of surfacing later as a failed test.
## test: the suite's unit tests, every bundled case on every backend, then the HTML report of
## those runs in headless Chromium (what CI runs; the browser env reads the runs the backend
## envs wrote into .tox/results/)
test: $(TOX)
	tools/build-envs $(TOX) unit $(BACKEND_ENVS) browser
	rm -rf .tox/results  # the framework envs write their runs here for the browser env: this run's only
	$(TOX) run -e unit,$(subst $() $(),$(comma),$(BACKEND_ENVS)),browser

clean:
	rm -rf .tox $(TOOLS) reports

comma := ,
