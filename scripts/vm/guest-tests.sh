#!/bin/sh
# The cgroup v2 checks, inside the VM (pure cgroup v2, Debian's 6.1 cloud kernel).
#
# 1. tests/cgroup.rs as root, from a cgroup of its own (/vm-root): the jail cgroup module
#    enforcing memory (OOM kill), cpu.max, io.max (O_DIRECT on the scratch disk) and
#    pids.max, CLONE_INTO_CGROUP, freezing (cgroup.freeze), teardown (of a frozen cgroup
#    too) and stale reaping; and, re-run as uid 65534 in a
#    cgroup that is not its own, the refusal and the RLIMIT_AS fallback.
# 2. the same tests as uid 65534 in a subtree delegated to it (/vm-user, chowned the way
#    systemd's Delegate=yes does).
# 3. nothing left behind but the supervisors' own (empty) leaves, which the next run reaps.
# 4. HOOK: `plugjail exec` verdicts with limit profiles (see below).
# 5. plugin mode: `plugjail call` with the serve gate on this kernel, and a paused
#    `plugjail serve` session frozen with cgroup.freeze (see below).
#
# Exit status 0 iff every check passed.
set -u
CG=/sys/fs/cgroup
NOBODY=65534
fail=0
T0=$(cut -d' ' -f1 /proc/uptime)

say() { echo "vm[$(cut -d' ' -f1 /proc/uptime)s]: $*"; }
bad() { say "FAIL: $*"; fail=1; }

# The guest's root cgroup is ours to configure: make every controller available below it.
echo "+memory +cpu +io +pids" >"$CG/cgroup.subtree_control" || bad "enabling controllers"

# Runs CMD... in a fresh cgroup $1 (created, optionally delegated to uid $2), as that uid.
in_cgroup() {
  cg=$1 uid=$2
  shift 2
  mkdir -p "$CG/$cg"
  if [ "$uid" != 0 ]; then
    chown "$uid:$uid" "$CG/$cg" "$CG/$cg/cgroup.procs" "$CG/$cg/cgroup.subtree_control" \
      "$CG/$cg/cgroup.threads"
    set -- /test/runas "$uid" "$uid" "$@"
  fi
  # The shell moves itself, then becomes the command: the cgroup holds that process only.
  sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG/$cg" "$@"
}

# --- 1. as root ------------------------------------------------------------------------
say "cgroup tests as root in /vm-root"
mkdir -p /scratch/root
in_cgroup vm-root 0 env PLUGJAIL_TEST_STRICT=1 PLUGJAIL_TEST_IO_DIR=/scratch/root \
  /test/cgroup-tests --test-threads=1 --nocapture || bad "cgroup tests as root"

# --- 2. as uid 65534 with a delegated subtree -------------------------------------------
say "cgroup tests as uid $NOBODY in the delegated /vm-user"
mkdir -p /scratch/user && chown "$NOBODY:$NOBODY" /scratch/user
in_cgroup vm-user "$NOBODY" env PLUGJAIL_TEST_STRICT=1 PLUGJAIL_TEST_IO_DIR=/scratch/user \
  /test/cgroup-tests --test-threads=1 --nocapture || bad "cgroup tests as uid $NOBODY"

# --- 3. leftovers -----------------------------------------------------------------------
say "looking for leftover jail cgroups"
for d in $(find "$CG" -type d -name 'plugjail-*'); do
  case "$d" in
    *-sup)
      # A supervisor's own leaf: it outlives the supervisor until the next run reaps it,
      # but must hold nothing once the supervisor has exited.
      [ -s "$d/cgroup.procs" ] && bad "$d still holds processes: $(cat "$d/cgroup.procs")"
      say "supervisor leaf $d (empty; reaped by the next run)"
      ;;
    *) bad "jail cgroup left behind: $d" ;;
  esac
done

# The next run reaps the first run's leaf (its supervisor is gone). /vm-root itself has
# controllers enabled now and takes no process, so the next run starts in a child of it,
# and looks for stale leaves in its own cgroup and in the delegated parent.
old_leaves=$(ls -d "$CG"/vm-root/plugjail-*-sup 2>/dev/null)
say "a second run in /vm-root/next reaps the first run's leaves: $old_leaves"
in_cgroup vm-root/next 0 /test/cgroup-tests stale_cgroups_of_a_dead_supervisor_are_reaped \
  --exact -q >/tmp/second-run.log 2>&1 || { cat /tmp/second-run.log; bad "stale test in the second run"; }
for d in $old_leaves; do [ -d "$d" ] && bad "$d was not reaped by the next run"; done

# --- 4. plugjail exec verdicts -------------------------------------------------------------
# plugjail's own binaries under pure cgroup v2, as root and as an ordinary user given a
# delegated cgroup: every verdict must be the expected one.
exec_case() {
  # exec_case USER PROFILE EXPECT_REGEX CMD...
  who=$1 profile=$2 expect=$3
  shift 3
  report=/tmp/verdict-$who-$profile.json
  rm -f "$report"
  # A fresh delegated cgroup per case: plugjail moves itself into a leaf of the one it
  # starts in (no internal processes on v2), so that one cannot take a new process.
  if [ "$who" = root ]; then cg=vm-exec-root-$profile uid=0; else cg=vm-exec-user-$profile uid=$NOBODY; fi
  out=$(in_cgroup "$cg" "$uid" /test/plugjail exec --profile "/test/profiles/vm-$profile.yaml" \
    --report "$report" -- "$@" 2>&1)
  verdict=$(cat "$report" 2>/dev/null | tr -d ' \n')
  say "exec [$who, $profile]: $(echo "$out" | tail -3 | tr '\n' ' ')"
  say "exec [$who, $profile] verdict: ${verdict:-<none>}"
  echo "$out$verdict" | grep -Eq "$expect" || bad "exec [$who, $profile]: expected /$expect/"
}

if [ -x /test/plugjail ]; then
  mkdir -p /scratch/exec && chown "$NOBODY:$NOBODY" /scratch/exec
  for who in root user; do
    exec_case "$who" memory '"outcome":"oom"' /test/hog memory 256
    exec_case "$who" pids '"outcome":"pids_limit"' /test/hog forkbomb 64
    # hog prints its own share; 10-35% of one core for cpu: 0.2.
    exec_case "$who" cpu '\((1[0-9]|2[0-9]|3[0-5])%\)' /test/hog spin 2
    # at most 3 MiB/s against write_bps 2M.
    exec_case "$who" io '\(([0-2]\.[0-9]+|3\.0+) MiB/s\)' /test/hog write /scratch/exec/f 6
  done
else
  bad "no /test/plugjail in the guest: the exec verdict checks cannot run"
fi

# --- 5. plugin mode: the serve gate on this kernel -------------------------------------------
# `plugjail call` as root and as a user with a delegated cgroup: the serve phase is in force
# (the gate needs ptrace, seccomp, PTRACE_GET_SYSCALL_INFO and Seccomp_filters, all in 6.1),
# a load-only syscall while serving is named with its phase, and a filter the plugin stacks
# to forge the gate's answer is refused.
call_case() {
  # call_case USER PROFILE PLUGIN METHOD EXPECT_REGEX
  who=$1 profile=$2 plugin=$3 method=$4 expect=$5
  report=/tmp/call-$who-$profile-$plugin-$method.json
  rm -f "$report"
  if [ "$who" = root ]; then uid=0; else uid=$NOBODY; fi
  cg=vm-call-$who-$profile-$plugin-$method
  out=$(echo -n vm | in_cgroup "$cg" "$uid" /test/plugjail call \
    --profile "/test/profiles/vm-$profile.yaml" --plugin "/test/plugins/$plugin.so" \
    --method "$method" --input - --report "$report" 2>&1)
  verdict=$(cat "$report" 2>/dev/null | tr -d ' \n')
  say "call [$who, $profile, $plugin $method]: $(echo "$out" | tail -2 | tr '\n' ' ')"
  say "call [$who, $profile, $plugin $method] verdict: ${verdict:-<none>}"
  echo "$out$verdict" | grep -Eq "$expect" || bad "call [$who, $profile, $plugin $method]: expected /$expect/"
}

if [ -x /test/plugjail ] && [ -e /test/plugins/hello.so ]; then
  for who in root user; do
    call_case "$who" plugin hello greet '"outcome":"ok".*"seccomp_serve":\{"phase":"serve"'
    call_case "$who" plugin escape mkdir '"outcome":"seccomp_violation".*"name":"mkdir".*"phase":"serve"'
    call_case "$who" plugin-attack serve_attack mkdir 'installeditself","syscall":\{"name":"socket".*"phase":"load"'
    # A session paused through --control-fd (scripts/vm/pause.c): frozen by the v2
    # freezer, its traced jail uses no CPU while paused, the call completes after the
    # resume, and the session closes ok. The host runs in vm-pause-WHO/host and starts
    # plugjail serve in vm-pause-WHO/serve, a cgroup of its own with the controllers.
    if [ "$who" = root ]; then uid=0; else uid=$NOBODY; fi
    pcg=$CG/vm-pause-$who
    mkdir -p "$pcg/serve"
    echo "+memory +cpu +pids" >"$pcg/cgroup.subtree_control" || bad "pause [$who]: controllers"
    if [ "$uid" != 0 ]; then
      chown "$uid:$uid" "$pcg/cgroup.procs" "$pcg/serve" "$pcg/serve/cgroup.procs" \
        "$pcg/serve/cgroup.subtree_control" "$pcg/serve/cgroup.threads"
    fi
    out=$(in_cgroup "vm-pause-$who/host" "$uid" /test/pause /test/plugjail \
      /test/profiles/vm-plugin.yaml /test/plugins/spin.so "$pcg/serve" 2>&1)
    rc=$?
    say "pause [$who]: $(echo "$out" | grep '^pause:')"
    say "pause [$who] verdict: $(echo "$out" | grep '^pause verdict:' | grep -o '"cgroup":{"backend":"[a-z0-9_]*"')"
    [ "$rc" = 0 ] || { echo "$out"; bad "pause [$who]: a paused session (exit $rc)"; }
  done
else
  bad "no plugjail or plugins in the guest: the plugin-mode checks cannot run"
fi

say "guest tests done in $(awk -v a="$T0" '{print int($1 - a)}' /proc/uptime)s, fail=$fail"
exit "$fail"
