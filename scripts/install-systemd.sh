#!/usr/bin/env bash
# Install a systemd unit that keeps zapvisor's supervisord running across reboots.
# Installing it is the operator's choice; nothing else in zapvisor needs it.
#
#   sudo -E scripts/install-systemd.sh [--user USER] [--home DIR] [--workdir DIR]
#                                      [--name NAME] [--zapvisor PATH] [--yes]
#   scripts/install-systemd.sh --print ...     print the unit, install nothing
#   sudo scripts/install-systemd.sh --uninstall [--name NAME]
#
# zapvisor's settings in the environment (ZAPVISOR_*, BASE_PORT, MAX_SESSIONS,
# MAX_SESSION_MEMORY_MB, SUPABASE_*; `sudo -E` keeps them) go to /etc/zapvisor/NAME.env
# (0600, it may hold a database password), which the unit reads; a .env file in the
# working directory is read by zapvisor itself. With DESTDIR set, the files are
# written under it and nothing is started (packaging).

set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TEMPLATE="$ROOT/scripts/systemd/zapvisor.service.in"
NAME=zapvisor
RUN_USER="${SUDO_USER:-$(id -un)}"
HOME_DIR=""
WORKDIR=""
ZAPVISOR="${ZV_VENV:-$ROOT/.venv}/bin/zapvisor"
PRINT=0
YES=0
UNINSTALL=0

die() { printf 'install-systemd: error: %s\n' "$1" >&2; exit "${2:-1}"; }
say() { printf 'install-systemd: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --user) RUN_USER="${2:?--user needs a value}"; shift 2 ;;
        --home) HOME_DIR="${2:?--home needs a value}"; shift 2 ;;
        --workdir) WORKDIR="${2:?--workdir needs a value}"; shift 2 ;;
        --name) NAME="${2:?--name needs a value}"; shift 2 ;;
        --zapvisor) ZAPVISOR="${2:?--zapvisor needs a value}"; shift 2 ;;
        --print) PRINT=1; shift ;;
        --yes) YES=1; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" 2 ;;
    esac
done

[[ "$NAME" =~ ^[A-Za-z0-9_.@-]+$ ]] || die "--name must be letters, digits, '_', '.', '@' or '-'" 2
DESTDIR="${DESTDIR:-}"
UNIT_PATH="$DESTDIR/etc/systemd/system/$NAME.service"
ENV_PATH="/etc/zapvisor/$NAME.env"

if [ "$UNINSTALL" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "run as root to remove $UNIT_PATH" 77
    if [ -d /run/systemd/system ]; then
        systemctl disable --now "$NAME.service" || true
    fi
    rm -f "$UNIT_PATH" "$DESTDIR$ENV_PATH"
    [ -d /run/systemd/system ] && systemctl daemon-reload
    say "removed $UNIT_PATH and $ENV_PATH (sessions and their data are untouched)"
    exit 0
fi

id "$RUN_USER" >/dev/null 2>&1 || die "no user named $RUN_USER (--user)" 2
USER_HOME="$(getent passwd "$RUN_USER" | cut -d: -f6)"
if [ -z "$HOME_DIR" ]; then
    if [ -n "${ZAPVISOR_HOME:-}" ]; then
        HOME_DIR="$ZAPVISOR_HOME"
    else
        HOME_DIR="$USER_HOME/.local/share/zapvisor"
    fi
fi
[ -n "$WORKDIR" ] || WORKDIR="$ROOT"
for value in "$HOME_DIR" "$WORKDIR" "$ZAPVISOR" "$ROOT"; do
    case "$value" in
        /*) ;;
        *) die "$value is not an absolute path" 2 ;;
    esac
    # systemd splits unquoted values at spaces and expands '%' specifiers
    [[ "$value" =~ ^[A-Za-z0-9_./+@:-]+$ ]] ||
        die "$value has characters a unit file cannot hold safely (spaces, '%', quotes...)" 2
done
[ -x "$ZAPVISOR" ] || die "$ZAPVISOR is not installed: run ./scripts/run once (or pass --zapvisor)" 2

unit="$(sed -e "s|@USER@|$RUN_USER|g" -e "s|@HOME@|$HOME_DIR|g" -e "s|@WORKDIR@|$WORKDIR|g" \
            -e "s|@ZAPVISOR@|$ZAPVISOR|g" -e "s|@ROOT@|$ROOT|g" -e "s|@ENVFILE@|$ENV_PATH|g" \
            "$TEMPLATE")"

# The operator's settings, as systemd's EnvironmentFile= reads them: "..." with \ and "
# escaped (no % expansion there). ZAPVISOR_HOME is in the unit itself.
settings=""
while IFS='=' read -r key _; do
    case "$key" in
        ZAPVISOR_HOME) continue ;;
        ZAPVISOR_*|SUPABASE_*|BASE_PORT|MAX_SESSIONS|MAX_SESSION_MEMORY_MB) ;;
        *) continue ;;
    esac
    value="${!key}"
    case "$value" in *$'\n'*) die "$key holds a newline: a unit's environment cannot" 2 ;; esac
    value="${value//\\/\\\\}"
    settings+="$key=\"${value//\"/\\\"}\""$'\n'
done < <(env | grep -E '^(ZAPVISOR_|SUPABASE_|BASE_PORT=|MAX_SESSIONS=|MAX_SESSION_MEMORY_MB=)' | sort)

write_env() {
    # 0600 from its creation: it may hold a database password or a service key
    mkdir -p -m 0755 "$DESTDIR/etc/zapvisor"
    (umask 077 && printf '%s' "$settings" > "$DESTDIR$ENV_PATH.tmp")
    mv "$DESTDIR$ENV_PATH.tmp" "$DESTDIR$ENV_PATH"
}

verify() {
    local dir
    if ! command -v systemd-analyze >/dev/null 2>&1; then
        say "systemd-analyze is not installed: unit not verified"
        return 0
    fi
    dir="$(mktemp -d)"
    printf '%s\n' "$unit" > "$dir/$NAME.service"
    if ! out="$(systemd-analyze verify "$dir/$NAME.service" 2>&1)" || [ -n "$out" ]; then
        rm -rf "$dir"
        die "systemd-analyze rejects the unit: $out"
    fi
    rm -rf "$dir"
}

if [ "$PRINT" = 1 ]; then
    printf '%s\n' "$unit"
    names="$(printf '%s' "$settings" | cut -d= -f1 | tr '\n' ' ')"
    printf '# %s (0600) would hold: %s\n' "$ENV_PATH" "${names:-nothing (no setting in the environment)}"
    exit 0
fi

[ -n "$DESTDIR" ] || [ "$(id -u)" = 0 ] ||
    die "run as root (sudo -E) to install $UNIT_PATH; --print shows the unit" 77
verify
if [ -n "$DESTDIR" ] || [ ! -d /run/systemd/system ]; then
    mkdir -p "$(dirname "$UNIT_PATH")"
    printf '%s\n' "$unit" > "$UNIT_PATH"
    chmod 0644 "$UNIT_PATH"
    write_env
    if [ -n "$DESTDIR" ]; then
        say "wrote $UNIT_PATH and $DESTDIR$ENV_PATH"
    else
        say "systemd is not running on this machine (a container?): wrote $UNIT_PATH, not enabled"
    fi
    exit 0
fi

# One supervisord per state dir: one started earlier by a zapvisor command must go.
as_user=(env "ZAPVISOR_HOME=$HOME_DIR")
[ "$(id -un)" = "$RUN_USER" ] || as_user=(runuser -u "$RUN_USER" -- "${as_user[@]}")
pid="$(cat "$HOME_DIR/supervisord.pid" 2>/dev/null || true)"
if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    if [ "$YES" != 1 ]; then
        [ -t 0 ] || die "a supervisord already runs for $HOME_DIR: pass --yes to stop it (sessions restart under systemd)" 2
        read -r -p "Stop the running supervisord (its sessions restart under systemd)? [y/N] " answer
        [[ "$answer" =~ ^[Yy] ]] || die "nothing done" 2
    fi
    (cd "$WORKDIR" && "${as_user[@]}" "$ZAPVISOR" shutdown)
fi

printf '%s\n' "$unit" > "$UNIT_PATH"
chmod 0644 "$UNIT_PATH"
write_env
systemctl daemon-reload
systemctl enable --now "$NAME.service"
say "installed and started $NAME.service (systemctl status $NAME; journalctl -u $NAME)"
