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
IMAGES   ?= 3
SIM      ?= both
# Debian packages each flow needs.
DATA_PKGS := dataset-fashion-mnist
HDL_PKGS  := verilator iverilog yosys
# FPGA flows (docs/FPGA.md): family, device and package for place and route, target
# clock (MHz), and which families `synth` maps to. TARGET (ice40-up5k, ice40-hx8k,
# ecp5-85k, generic) makes `compile` refuse a design that the fit model says is too big.
FAMILY   ?= ice40
DEVICE   ?= $(if $(filter ecp5,$(FAMILY)),85k,hx8k)
PACKAGE  ?= $(if $(filter ecp5,$(FAMILY)),CABGA381,$(if $(filter up5k,$(DEVICE)),sg48,ct256))
FREQ     ?= 12
FAMILIES ?= generic ice40 ecp5
BREAKDOWN ?= 1
TARGET   ?=
FPGA_ENV := FAMILY=$(FAMILY) DEVICE=$(DEVICE) PACKAGE=$(PACKAGE) FREQ=$(FREQ) FAMILIES="$(FAMILIES)" BREAKDOWN=$(BREAKDOWN)

.PHONY: all build deps-data deps-hdl deps-fpga compile lint synth pnr bitstream timing fpga-report postsynth-sim sim demo test test-rust test-python style bench bench-sim clean

all: build

build:
	$(CARGO) build --release

deps-data:
	tools/ensure-deps.sh $(DATA_PKGS)

deps-hdl:
	tools/ensure-deps.sh $(HDL_PKGS)

deps-fpga: deps-hdl
	tools/ensure-fpga-tools.sh ice40
	tools/ensure-fpga-tools.sh ecp5

# OUT/ from MODEL for a ROWSxCOLS array (reports, packed weights, rtl/, tb/).
compile: build
	$(CCC) compile $(MODEL) --rows $(ROWS) --cols $(COLS) -o $(OUT)

# verilator --lint-only -Wall over the emitted accelerator.
lint: compile deps-hdl
	$(MAKE) -C $(OUT)/tb lint

# The flows below read OUT as `ccc compile` left it; it is compiled only when missing or
# older than MODEL (recompiling replaces OUT, flow results included).
$(OUT)/compile.json: $(MODEL) | build
	$(CCC) compile $(MODEL) --rows $(ROWS) --cols $(COLS) $(if $(TARGET),--target $(TARGET)) -o $(OUT)

# Yosys utilisation (OUT/fpga/synth_{generic,ice40,ecp5}.txt; per module with BREAKDOWN=1),
# then the fit model's prediction next to it in OUT/report.{md,json}.
synth: $(OUT)/compile.json deps-hdl
	$(FPGA_ENV) tools/fpga-flow.sh synth $(OUT)
	$(CCC) fpga-report $(OUT)

# Place and route (nextpnr) for FAMILY/DEVICE/PACKAGE at FREQ MHz; prints Fmax.
pnr: $(OUT)/compile.json deps-hdl
	$(FPGA_ENV) tools/fpga-flow.sh pnr $(OUT)
	$(CCC) fpga-report $(OUT)

# iCE40 OUT/fpga/ice40.bin (icepack) or ECP5 OUT/fpga/ecp5.bit (ecppack).
bitstream: $(OUT)/compile.json deps-hdl
	$(FPGA_ENV) tools/fpga-flow.sh bitstream $(OUT)
	$(CCC) fpga-report $(OUT)

# Max frequency from nextpnr's report (place and route first if needed).
timing: $(OUT)/compile.json deps-hdl
	$(FPGA_ENV) tools/fpga-flow.sh timing $(OUT)

# Predicted vs measured resources, Fmax and run times into OUT/report.{md,json}.
fpga-report: $(OUT)/compile.json
	$(CCC) fpga-report $(OUT)

# The post-synthesis netlist of ccc_top (FAMILY's mapping, or NETLIST=generic) simulated
# on IMAGES real test images against the bit-exact reference.
postsynth-sim: $(OUT)/compile.json deps-hdl
	$(FPGA_ENV) tools/fpga-flow.sh netlist $(OUT)
	$(CCC) simulate $(OUT) --images $(IMAGES) --simulator icarus --netlist $(or $(NETLIST),$(FAMILY))

# Simulate the emitted RTL (SIM=verilator|icarus|both) on IMAGES images against the
# bit-exact reference; prints measured vs predicted cycles.
sim: compile deps-hdl
	$(CCC) simulate $(OUT) --images $(IMAGES) --simulator $(SIM)

# The main job: compile the shipped model for a ROWSxCOLS array (column-combined and
# dense baseline) with float / 8-bit / packed accuracy on LIMIT Fashion-MNIST test
# images in the reports, then simulate both accelerators (Verilator) on IMAGES real
# test images against the bit-exact reference, with measured vs predicted cycles.
demo: build deps-data deps-hdl
	$(CCC) inspect $(MODEL)
	$(CCC) compile $(MODEL) --rows $(ROWS) --cols $(COLS) --dataset fashion-mnist --limit $(LIMIT) -o $(OUT)
	$(CCC) compile $(MODEL) --rows $(ROWS) --cols $(COLS) --dense --dataset fashion-mnist --limit $(LIMIT) -o $(OUT)-dense
	$(CCC) simulate $(OUT) --images $(IMAGES) --simulator verilator
	$(CCC) simulate $(OUT)-dense --images $(IMAGES) --simulator verilator
	@echo "reports: $(OUT)/report.md (column-combined), $(OUT)-dense/report.md (dense baseline)"

test: deps-data deps-hdl deps-fpga style test-rust test-python

style:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test-rust:
	$(CARGO) test --release

test-python: build
	CCC_BIN=$(CURDIR)/$(CCC) python3 -m unittest tools/test_export.py -v

# Packing speed (criterion); numbers quoted in the README.
bench:
	$(CARGO) bench --bench packing

# RTL simulation speed: the shipped model on a 32x32 array, Verilator.
bench-sim: build deps-hdl
	$(CCC) compile $(MODEL) --rows 32 --cols 32 -o $(OUT)-bench
	$(CCC) simulate $(OUT)-bench --images 20 --simulator verilator

clean:
	$(CARGO) clean
	rm -rf $(OUT) $(OUT)-dense $(OUT)-bench
