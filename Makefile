# ccc — top-level flows. `make demo` runs the main job on a shipped model; `make test`
# runs every test. Both install missing Debian packages when run as root (or with
# passwordless sudo), or stop with the exact command to run.

CARGO    ?= cargo
CCC      := target/release/ccc
MODEL    ?= models/synthetic-shiftnet.safetensors
OUT      ?= out
ROWS     ?= 32
COLS     ?= 32
LIMIT    ?= 1000
# Debian packages each flow needs.
DATA_PKGS := dataset-fashion-mnist

.PHONY: all build deps-data demo test test-rust test-python style bench clean

all: build

build:
	$(CARGO) build --release

deps-data:
	tools/ensure-deps.sh $(DATA_PKGS)

# The main job: compile the shipped model for a ROWSxCOLS array (packed and dense
# baseline), then run float / 8-bit / packed accuracy on real Fashion-MNIST images.
demo: build deps-data
	$(CCC) inspect $(MODEL)
	$(CCC) compile $(MODEL) --rows $(ROWS) --cols $(COLS) -o $(OUT)
	$(CCC) compile $(MODEL) --rows $(ROWS) --cols $(COLS) --dense -o $(OUT)-dense
	$(CCC) eval $(MODEL) --rows $(ROWS) --cols $(COLS) --dataset fashion-mnist --limit $(LIMIT)
	@echo "reports: $(OUT)/report.md (packed), $(OUT)-dense/report.md (dense baseline)"

test: deps-data style test-rust test-python

style:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test-rust:
	$(CARGO) test

test-python: build
	CCC_BIN=$(CURDIR)/$(CCC) python3 -m unittest tools/test_export.py -v

# Packing speed (criterion); numbers quoted in the README.
bench:
	$(CARGO) bench --bench packing

clean:
	$(CARGO) clean
	rm -rf $(OUT) $(OUT)-dense
