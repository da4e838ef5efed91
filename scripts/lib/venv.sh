# Sourced by scripts/run and scripts/test: make .venv hold zapvisor (and, with
# ZV_EXTRAS=dev, its test tools), reinstalling only when pyproject.toml changed or
# the test tools are missing.
set -euo pipefail

ZV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ZV_VENV="${ZV_VENV:-$ZV_ROOT/.venv}"
ZV_EXTRAS="${ZV_EXTRAS:-}"

zv_say() { printf 'zapvisor: %s\n' "$*" >&2; }

zv_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"; return 0
        fi
    done
    zv_say "error: Python 3.11 or newer is needed (apt-get install python3)"; return 1
}

zv_apt_install() {
    # Debian/Ubuntu packages, only when missing and only as root.
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        zv_say "error: missing system packages: ${missing[*]} (install them as root)"; return 1
    fi
    zv_say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

zv_source_hash() {
    # what the installed venv depends on: a change reinstalls
    cat "$ZV_ROOT/pyproject.toml" "$ZV_ROOT"/scripts/lib/venv.sh | sha256sum | cut -c1-16
}

zv_ensure_venv() {
    # The stamp holds the source hash and the extras installed ("<hash> dev"): an
    # install with the test tools serves `run` too, so run and test after one another
    # do not reinstall each other's venv.
    local py stamp want have_hash="" have_extras="" extras why=""
    py="$(zv_python)"
    if [ ! -x "$ZV_VENV/bin/python" ]; then
        if ! "$py" -m venv "$ZV_VENV" 2>/dev/null; then
            rm -rf "$ZV_VENV"
            # Debian's python3 ships venv/ensurepip separately.
            local ver; ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            zv_apt_install "python${ver}-venv" || zv_apt_install python3-venv
            "$py" -m venv "$ZV_VENV"
        fi
        why="installing zapvisor into $ZV_VENV (first run takes a minute)"
    fi
    want="$(zv_source_hash)"
    stamp="$ZV_VENV/.zapvisor-installed"
    if [ -f "$stamp" ]; then read -r have_hash have_extras < "$stamp" || true; fi
    extras="$have_extras"
    if [ -n "$ZV_EXTRAS" ] && [[ ",$have_extras," != *",$ZV_EXTRAS,"* ]]; then
        extras="${have_extras:+$have_extras,}$ZV_EXTRAS"
        [ -n "$why" ] || why="adding the test tools to $ZV_VENV"
    fi
    if [ -z "$why" ] && [ "$have_hash" != "$want" ]; then
        why="updating zapvisor in $ZV_VENV (pyproject.toml or the install script changed)"
    fi
    if [ -z "$why" ] && ! "$ZV_VENV/bin/python" -c 'import ecosystem, runner, tui' 2>/dev/null; then
        why="reinstalling zapvisor into $ZV_VENV (it does not import)"
    fi
    [ -n "$why" ] || return 0
    zv_say "$why"
    "$ZV_VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    local target="$ZV_ROOT"
    [ -n "$extras" ] && target="$ZV_ROOT[$extras]"
    "$ZV_VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$target"
    echo "$want $extras" > "$stamp"
}
