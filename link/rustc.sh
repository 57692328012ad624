#!/bin/sh
# The compiler as `cargo xtask dist` runs it (RUSTC_WRAPPER) for the binary wf ships: the command
# cargo gives, and in an optimized build also `-Cprofile-use=link/wf.profdata`, the profile of
# `wf serve` answering its benchmark scenarios that `benches/pgo.sh` records (profile-guided
# optimization). Plain `cargo build --release` does not run it.
# LLVM then lays out each function for the paths that run, keeps code that never ran small and out
# of the way, and inlines by what is called: a request runs through fewer cache lines of code.
#
# The profile is added to no build that is not optimized (tests, clippy), to no build recording a
# profile or instrumented for fuzzing, with WF_NO_PGO=1, and with a compiler other than the one
# that wrote it (`link/wf.profdata.rustc` holds its `rustc -vV`): another LLVM may not read the
# file. A function changed since the profile was written is optimized without its counts, as it
# would be without a profile; the build never fails for an old profile.
dir=$(cd "$(dirname "$0")" && pwd)
optimized=
for arg in "$@"; do
  case $arg in
    opt-level=0 | -Copt-level=0) optimized= ;;
    opt-level=* | -Copt-level=*) optimized=1 ;;
    *profile-generate* | *profile-use* | *sanitizer* | *sancov*) exec "$@" ;;
  esac
done
if [ -n "$optimized" ] && [ "${WF_NO_PGO:-}" != 1 ] && [ -f "$dir/wf.profdata" ] \
  && [ "$("$1" -vV 2>/dev/null)" = "$(cat "$dir/wf.profdata.rustc" 2>/dev/null)" ]; then
  exec "$@" "-Cprofile-use=$dir/wf.profdata" -Cllvm-args=-no-pgo-warn-mismatch
fi
exec "$@"
