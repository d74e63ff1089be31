# Shared by scripts/setup and scripts/setup-tests (sourced, not run).
#
# Why this exists: the pip bundled with the machine's Python (23.2.1 here) mishandles a pinned
# requirement's extras in hash mode, so a new upstream release could break an install the lock was
# meant to freeze. Every venv is therefore made the same way, and nothing is resolved against the
# live index:
#   1. `python3 -m venv` (whatever pip it carries is used once, for one hash-pinned wheel);
#   2. the pip pinned in the lock itself is installed with --no-deps --require-hashes;
#   3. the lock's wheels are downloaded, hash-checked, into a local wheelhouse (.cache/wheels);
#   4. the lock is installed from that wheelhouse only (--no-index --no-deps --require-hashes);
#   5. packages the lock no longer pins are removed, and `pip check` proves the lock is complete.
# Each step prints one line; a failure prints the line that matters, what to try, and the log path.

WHEELHOUSE=${CONVOSIM_WHEELHOUSE:-.cache/wheels}
SETUP_LOG=${SETUP_LOG:-.cache/setup.log}
mkdir -p "$(dirname "$SETUP_LOG")" "$WHEELHOUSE"

# step "what it does" command... : one line per step, the details in $SETUP_LOG.
step() {
  local what=$1; shift
  local start=$SECONDS
  printf '  %-58s' "$what" >&2
  echo "### $what: $*" >>"$SETUP_LOG"
  if "$@" >>"$SETUP_LOG" 2>&1; then
    printf 'ok (%ds)\n' $((SECONDS - start)) >&2
    return 0
  fi
  printf 'FAILED\n' >&2
  local why
  why=$(awk '/^### /{buf=""} {buf=buf"\n"$0} END{print buf}' "$SETUP_LOG" \
        | grep -E '^(ERROR|error|Error|E:|fatal)|No matching distribution|Could not|THESE PACKAGES DO NOT MATCH|has requirement|which is not installed' \
        | head -n 1)
  echo "  -> ${why:-$(tail -n 1 "$SETUP_LOG")}" >&2
  case "$why" in
    *"DO NOT MATCH"*|*hash*) echo "  try: a wheel changed upstream or a download broke: rm -rf $WHEELHOUSE and run again" >&2 ;;
    *"which is not installed"*|*"has requirement"*) echo "  try: the lock is incomplete: regenerate it with bash scripts/lock (README, Development)" >&2 ;;
    *"No matching distribution"*|*"Could not"*) echo "  try: check the package index is reachable (pip config list), then run again" >&2 ;;
    *) echo "  try: read the step's output in $SETUP_LOG" >&2 ;;
  esac
  echo "  full log: $SETUP_LOG" >&2
  exit 1
}

# The pinned pip of LOCK, as a one-requirement hash file for the bootstrap.
_pinned_pip() {
  awk '/^pip==/{on=1} on{print} on && !/\\$/{exit}' "$1"
}

# lock_venv DIR LOCK: DIR holds exactly LOCK, installed by LOCK's own pip from hash-checked wheels.
lock_venv() {
  local dir=$1 lock=$2
  local py=$dir/bin/python
  local pip=("$py" -m pip --disable-pip-version-check --no-input)
  local pin
  pin=$(_pinned_pip "$lock")
  [ -n "$pin" ] || { echo "  $lock pins no pip: regenerate it with bash scripts/lock" >&2; exit 1; }
  [ -x "$py" ] || step "create $dir" python3 -m venv "$dir"
  if [ "$("$py" -m pip --version 2>/dev/null | cut -d' ' -f2)" != "$(echo "$pin" | head -n1 | sed 's/pip==\([^ ]*\).*/\1/')" ]; then
    local req=$dir/.pinned-pip.txt
    echo "$pin" >"$req"
    step "install the lock's pip ($(echo "$pin" | head -n1 | cut -d' ' -f1))" \
      "${pip[@]}" install --no-deps --require-hashes -r "$req"
  fi
  step "download $lock (hash-checked)" \
    "${pip[@]}" download --no-deps --require-hashes --only-binary=:all: -d "$WHEELHOUSE" -r "$lock"
  step "install $lock from the wheelhouse" \
    "${pip[@]}" install --no-index --find-links "$WHEELHOUSE" --no-deps --require-hashes -r "$lock"
  step "remove what the lock no longer pins" _sync "$py" "$lock"
  step "pip check (the lock is complete)" "${pip[@]}" check
}

# _sync PY LOCK: uninstall every package of the venv that LOCK does not pin (the editable project aside),
# so a venv that outlived a lock change holds exactly the lock.
_sync() {
  local py=$1 lock=$2 extra
  extra=$("$py" - "$lock" <<'PY'
import re, subprocess, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
pinned = {norm(m) for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(sys.argv[1]).read(), re.M)}
frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable", "--all"],
                        capture_output=True, text=True, check=True).stdout
print(" ".join(n for n in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", frozen, re.M) if norm(n) not in pinned))
PY
)
  [ -z "$extra" ] || "$py" -m pip uninstall -y $extra
}
