import { VmforkError } from '../errors.js';

/**
 * The shell side of the identity pipeline: quoting, and the runtime every generated script starts with. The
 * guest's /bin/sh is dash, so everything here is POSIX sh; it avoids forks where a builtin will do, because under
 * TCG every fork + exec of a small program costs milliseconds.
 */


/** Prefix of every structured output line: `@@step=<name> <key>=<value>`. */
export const FACT_PREFIX = '@@step=';

/** Step name → shell function name (dash accepts only [A-Za-z0-9_] in function names). */
export function stepFunctionName(step: string): string {
  if (!/^[a-z][a-z0-9-]*$/.test(step)) throw new VmforkError('VMFORK_INTERNAL', `invalid identity step name ${JSON.stringify(step)}`);
  return `step_${step.replaceAll('-', '_')}`;
}

/**
 * Helpers shared by the step fragments. Kept apart from the runtime so unit tests can source them on the host and
 * exercise the file logic (hosts line, key marker) against a temporary directory.
 */
export const SHELL_HELPERS = [
  "NL='\n'",
  "fact() { printf '@@step=%s %s=%s\\n' \"$STEP\" \"$1\" \"$2\"; }",
  '',
  "# Reads the first line of file $2 into the variable named $1 ('' when the file is missing or empty).",
  'read_first() {',
  '  eval "$1="',
  '  if [ -r "$2" ]; then IFS= read -r "$1" < "$2" || :; fi',
  '}',
  '',
  '# Writes $2 plus a newline into file $1 in place, only when it differs. One small write() after O_TRUNC, no',
  '# temp file + mv: under TCG every exec costs tens of ms, and these files are one line long (docs/identity.md).',
  'put_line() {',
  '  read_first _cur "$1"',
  '  if [ "$_cur" != "$2" ] || [ ! -s "$1" ]; then printf \'%s\\n\' "$2" > "$1"; fi',
  '}',
  '',
  '# Makes $2 the one 127.0.1.1 line of hosts file $1, where the first such line was (appended when none was).',
  '# Pure shell (read/case/printf are builtins); the file is rewritten only when its content changes.',
  'set_hosts_line() {',
  '  _new=; _old=; _done=0',
  '  if [ -e "$1" ]; then',
  '    while IFS= read -r _l || [ -n "$_l" ]; do',
  '      _old="$_old$_l$NL"',
  '      case $_l in',
  '        127.0.1.1[[:space:]]*) if [ "$_done" = 0 ]; then _new="$_new$2$NL"; _done=1; fi ;;',
  '        *) _new="$_new$_l$NL" ;;',
  '      esac',
  '    done < "$1"',
  '  fi',
  '  if [ "$_done" = 0 ]; then _new="$_new$2$NL"; fi',
  '  if [ "$_new" != "$_old" ] || [ ! -e "$1" ]; then printf \'%s\' "$_new" > "$1"; fi',
  '}',
  '',
  '# One fact KEY per line of TEXT ($2), in this shell (no pipe, no fork).',
  'fact_lines() {',
  '  if [ -z "$2" ]; then return 0; fi',
  '  _o=$IFS; IFS=$NL; set -f',
  '  for _x in $2; do fact "$1" "$_x"; done',
  '  set +f; IFS=$_o',
  '}',
  '',
  '# defer NAME / take_deferred NAME: a step asks for background work (a service restart) that its epilogue does',
  '# after every step has run, so that work does not compete for the one vCPU with the steps still to come. The flag',
  '# lives in a file because each step runs in a subshell; it is emptied, not removed (rm would be an exec).',
  '# (VMFORK_STATE_DIR: /run in the guest; tests point it at a temporary directory.)',
  'defer() { echo 1 > "${VMFORK_STATE_DIR:-/run}/vmfork-identity.$1"; }',
  'take_deferred() {',
  '  read_first _f "${VMFORK_STATE_DIR:-/run}/vmfork-identity.$1"',
  '  if [ "$_f" != 1 ]; then return 1; fi',
  '  : > "${VMFORK_STATE_DIR:-/run}/vmfork-identity.$1"',
  '}',
  '',
  '# queue_unit UNIT (in an epilogue): asks for UNIT to be restarted, or started when stopped. flush_unit_jobs then',
  '# sends every queued unit to systemd in ONE `systemctl --no-block reload-or-restart`: each cold systemctl costs',
  '# ~0.3 s of the single vCPU under TCG. Its exit code is reported to every step that queued a unit.',
  'queue_unit() { echo "$STEP $1" >> "${VMFORK_STATE_DIR:-/run}/vmfork-identity.units"; }',
  'flush_unit_jobs() {',
  '  _q="${VMFORK_STATE_DIR:-/run}/vmfork-identity.units"; _units=; _steps=',
  '  if [ -s "$_q" ]; then',
  '    while read -r _s _u; do _units="$_units $_u"; _steps="$_steps $_s"; done < "$_q"',
  '    : > "$_q"',
  '  fi',
  '  if [ -z "$_units" ]; then return 0; fi',
  '  _jerr=$(systemctl --no-block reload-or-restart $_units 2>&1); _jrc=$?',
  '  for _s in $_steps; do',
  '    STEP=$_s; fact unit_job_rc "$_jrc"',
  '    if [ -n "$_jerr" ]; then fact_lines unit_job_stderr "$_jerr"; fi',
  '  done',
  '}',
  '',
  '# True when dir $1 holds the ed25519 host key pair generated for machine id $2 (its marker file says so).',
  'ssh_keys_current() {',
  '  if [ ! -s "$1/ssh_host_ed25519_key" ] || [ ! -s "$1/ssh_host_ed25519_key.pub" ]; then return 1; fi',
  '  read_first _m "$1/vmfork-host-keys.machine-id"',
  '  [ "$_m" = "$2" ]',
  '}',
].join('\n');

/**
 * Runs one step: its function in a subshell under `set -e` (a failing command ends that step only), stdout
 * straight through (fd 3), stderr captured and printed as facts, then `rc` and `ms`. The clock is /proc/uptime
 * (10 ms resolution) because reading it is a builtin `read`, while `date` would be a fork per measurement.
 */
export const RUNTIME = [
  'now_cs() {',
  '  read -r _u _rest < /proc/uptime',
  '  _u=${_u%.*}${_u#*.}',
  '  _u=${_u#"${_u%%[!0]*}"}',
  '  NOW_CS=${_u:-0}',
  '}',
  '',
  '# run_step NAME FUNCTION [KEY_PREFIX]: the prefix (epilogue_) keeps an epilogue\'s rc/ms/stderr apart',
  'run_step() {',
  '  STEP=$1',
  '  now_cs; _t0=$NOW_CS',
  // 2>&1 before 1>&3: stderr into the capture, stdout to the real stdout (dash mishandles the { } 2>&1 form)
  '  _err=$( ( set -e; "$2" ) 2>&1 1>&3 )',
  '  _rc=$?',
  '  now_cs',
  '  fact "${3}rc" "$_rc"',
  '  fact "${3}ms" "$(( (NOW_CS - _t0) * 10 ))"',
  '  if [ -n "$_err" ]; then',
  "    printf '%s\\n' \"$_err\" | while IFS= read -r _l; do fact \"${3}stderr\" \"$_l\"; done",
  '  fi',
  '}',
].join('\n');

/**
 * The script's start: a known PATH (qemu-ga's environment is not a login shell's), stdin read with the `read`
 * builtin into unexported variables (so the entropy is never in any process's argv or environment), then the
 * helpers.
 */
export function scriptPreamble(): string {
  return [
    '# vmfork identity pipeline (generated). Entropy arrives on stdin, never in argv.',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH',
    'umask 022',
    // stdin: entropy for the CRNG, entropy for the random seed (octal escapes), the host's clock (epoch ns)
    'VMFORK_RNG=; VMFORK_SEED=; VMFORK_CLOCK_NS=',
    'IFS= read -r VMFORK_RNG || :',
    'IFS= read -r VMFORK_SEED || :',
    'IFS= read -r VMFORK_CLOCK_NS || :',
    'exec 3>&1',
    SHELL_HELPERS,
    RUNTIME,
  ].join('\n');
}
