# Every target creates or refreshes the virtual environment .venv first when it is missing
# or older than pyproject.toml, so `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test demo bench bench-video clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

setup: $(STAMP)

# Two workers, a test file each at a time: most of the suite's time is XLA compiling, which
# runs on one core: here the suite took 9m32s this way against 12m51s serially.
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

demo: $(STAMP)
	$(PY) experiments/demo.py

bench: $(STAMP)
	$(PY) experiments/bench_entropy.py

# Long: fits 8 networks on the CPU (hours). Finished points are cached under out/.
bench-video: $(STAMP)
	$(PY) experiments/bench_video_rd.py --epochs 60

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
