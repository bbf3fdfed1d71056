# Shared set-up for scripts/run, scripts/test and scripts/bench: install the Debian packages
# that are missing, then configure and build in $BUILD_DIR. Source it; do not run it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-$(nproc)}

IOMMUSIM_PACKAGES=(build-essential cmake pkg-config libsystemc-dev catch2 libfmt-dev
    libboost-program-options-dev libbenchmark-dev zlib1g-dev python3 time)

install_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

build_iommusim() {
    local dir=${1:-$BUILD_DIR} type=${2:-$BUILD_TYPE}
    shift 2 2>/dev/null || true
    cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
}

install_packages "${IOMMUSIM_PACKAGES[@]}"
