# Shared set-up for scripts/run, scripts/test and scripts/bench: install the Debian packages
# that are missing, then configure and build. Source it; do not run it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-$(nproc)}
# scripts/run and scripts/test share $BUILD_DIR and configure it with exactly these flags:
# a flag that differed would change every compile command and rebuild everything each time
# one script follows the other.
BUILD_FLAGS=(-DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DIOMMUSIM_WERROR=ON)

IOMMUSIM_PACKAGES=(build-essential cmake pkg-config libsystemc-dev catch2 libfmt-dev nlohmann-json3-dev
    libboost-program-options-dev libbenchmark-dev zlib1g-dev python3 time
    python3-matplotlib parallel)

# apt-get and dpkg print hundreds of lines; they go to a log that is shown only on failure.
install_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup: installing ${missing[*]}" >&2
    local sudo="" log
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    log=$(mktemp "${TMPDIR:-/tmp}/iommusim-setup.XXXXXX.log")
    if ! { $sudo apt-get update &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends \
            "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup: installing ${missing[*]} failed (apt-get output above, kept in $log)" >&2
        exit 1
    fi
    rm -f "$log"
}

# configure_build DIR CMAKE_ARGS...: configure (or re-check) a build folder, quietly.
configure_build() {
    local dir=$1
    shift
    cmake -S "$ROOT" -B "$dir" "$@" >/dev/null
}

# build_targets DIR [TARGET...]: build those targets (everything when none is named).
build_targets() {
    local dir=$1
    shift
    if [ $# -gt 0 ]; then
        cmake --build "$dir" -j "$JOBS" --target "$@"
    else
        cmake --build "$dir" -j "$JOBS"
    fi
}

install_packages "${IOMMUSIM_PACKAGES[@]}"
