# The preamble and the exit-code checks every tests/cli/*.sh script shares (sourced, never run on
# its own: tests/CMakeLists.txt registers every other *.sh in this folder as a test).
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   cli_init NAME "$@"        # <path-to-adalog> <repo-root>, both made absolute; $TMP; counters
#   ...                       # ok / bad / expect_exit ...
#   cli_finish "LABEL"        # prints "LABEL: P passed, F failed"; the script's exit status
# Scripts run from anywhere (ctest passes absolute paths; the scripts that cd keep working).
set -u

# cli_init NAME ARGS...: ADALOG and ROOT from ARGS (usage error naming NAME if either is missing),
# PY, a fresh $TMP removed on exit (made writable first: a test may leave read-only folders), and
# the pass/fail counters.
cli_init() {
  local name=$1
  ADALOG=${2:?usage: $name <path-to-adalog> <repo-root>}
  ROOT=${3:?usage: $name <path-to-adalog> <repo-root>}
  [[ -x "$ADALOG" ]] || { echo "$name: $ADALOG is not an executable"; exit 1; }
  ADALOG=$(cd "$(dirname "$ADALOG")" && pwd)/$(basename "$ADALOG")
  ROOT=$(cd "$ROOT" && pwd)
  PY=/usr/bin/python3
  TMP=$(mktemp -d)
  trap 'chmod -R u+w "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
  pass=0
  fail=0
}

bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
ok() { pass=$((pass + 1)); }

# cli_finish LABEL: the summary line; returns nonzero when a check failed (call it last).
cli_finish() {
  echo "$1: $pass passed, $fail failed"
  ((fail == 0))
}

# temps_in DIR: how many temporary (*.tmp.*) or probe (*.probe.*) files DIR holds (0 if DIR is
# missing): what an interrupted or refused write must never leave behind.
temps_in() {
  ls -A "$1" 2>/dev/null | grep -c -E '\.(tmp|probe)\.'
}

# expect_exit WANT_RC WANT [OPTION...] -- ARGS...
#   Runs `adalog ARGS` (stdin /dev/null, stdout in $TMP/cli.out, stderr in $TMP/cli.err, exit code
#   in $rc) and counts one ok when it exits WANT_RC and stderr holds WANT (a fixed string) and every
#   OPTION holds; otherwise one bad naming the command, each problem, stdout and stderr.
#     --stdout         look for WANT on stdout instead, and want stderr empty
#     --quiet          want the stream WANT is not looked for in empty (stdout, or with --stdout
#                      stderr)
#     --regex          WANT is an extended regular expression, not a fixed string
#     --absent PATH    PATH does not exist afterwards (no output written)
#     --no-temps DIR   DIR holds no temporary or probe file afterwards (see temps_in)
#     --not TEXT       the stream WANT is looked for in does not hold the fixed string TEXT
#     --timeout S      the command is killed after S seconds (then it fails with rc 124)
expect_exit() {
  local want_rc=$1 want=$2 stream=err quiet=0 regex=0 timeout=
  local absent=() temps=() nots=()
  shift 2
  while [[ $1 != -- ]]; do
    case $1 in
      --stdout) stream=out ;;
      --quiet) quiet=1 ;;
      --regex) regex=1 ;;
      --absent) absent+=("$2"); shift ;;
      --no-temps) temps+=("$2"); shift ;;
      --not) nots+=("$2"); shift ;;
      --timeout) timeout=$2; shift ;;
      *) echo "expect_exit: unknown option $1" >&2; exit 2 ;;
    esac
    shift
  done
  shift
  local out=$TMP/cli.out err=$TMP/cli.err
  if [[ -n $timeout ]]; then
    timeout "$timeout" "$ADALOG" "$@" >"$out" 2>"$err" </dev/null
  else
    "$ADALOG" "$@" >"$out" 2>"$err" </dev/null
  fi
  rc=$?
  local got=$err other=$out
  [[ $stream == out ]] && { got=$out; other=$err; }
  local problems=() p
  [[ $rc == "$want_rc" ]] || problems+=("exit code $rc, want $want_rc")
  if ((regex)); then
    grep -Eq -- "$want" "$got" || problems+=("std$stream does not match: $want")
  else
    grep -qF -- "$want" "$got" || problems+=("std$stream does not contain: $want")
  fi
  if [[ $stream == out ]] || ((quiet)); then
    [[ -s $other ]] && problems+=("unexpected output on the other stream: $(head -c 300 "$other")")
  fi
  for p in "${nots[@]+"${nots[@]}"}"; do
    grep -qF -- "$p" "$got" && problems+=("std$stream contains: $p")
  done
  for p in "${absent[@]+"${absent[@]}"}"; do
    [[ -e $p || -L $p ]] && problems+=("$p exists")
  done
  for p in "${temps[@]+"${temps[@]}"}"; do
    [[ $(temps_in "$p") == 0 ]] || problems+=("temporary files left in $p: $(ls -A "$p" | grep -E '\.(tmp|probe)\.')")
  done
  if ((${#problems[@]})); then
    bad "adalog $*"
    for p in "${problems[@]}"; do echo "      $p"; done
    echo "      stdout: $(head -c 400 "$out")"
    echo "      stderr: $(head -c 400 "$err")"
    return 1
  fi
  ok
}
