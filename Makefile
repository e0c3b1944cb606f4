# The README's two commands. Both bootstrap their own tools: a fresh machine needs only python3.
PYTHON ?= python3
TOOLS := .venv-tools
TOX := $(TOOLS)/bin/tox
BACKEND_ENVS := torch paddle mindspore

.PHONY: report test clean

$(TOX):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q "tox>=4.11"

## report: build every backend environment, run the bundled cases, write reports/index.html
report: $(TOX)
	$(TOX) run -e $(subst $() $(),$(comma),$(BACKEND_ENVS)) --notest
	$(TOX) run -e report

## test: the suite's unit tests, every bundled case on every backend, then the HTML report of
## those backends in headless Chromium (what CI runs; the browser env needs the backend envs)
test: $(TOX)
	$(TOX) run -e unit,$(subst $() $(),$(comma),$(BACKEND_ENVS)),browser

clean:
	rm -rf .tox $(TOOLS) reports

comma := ,
