#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 60), one at a time on one job,
# and prints per target: runs, seconds, crashes.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Setup, once: `cargo install cargo-fuzz --locked`.
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address, SanitizerCoverage). This machine
# has only stable Rust, so the script sets RUSTC_BOOTSTRAP=1, which lets stable rustc accept them;
# with a nightly toolchain installed, `cargo +nightly fuzz run ...` works the same without it.
# The corpus (fuzz/corpus/<target>) and crash inputs (fuzz/artifacts/<target>) stay out of git.
# A crash input is replayed with `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>`.
set -u
seconds="${1:-60}"
shift || true
cd "$(dirname "$0")/../fuzz" || exit 2
export RUSTC_BOOTSTRAP=1
# Its own target dir by default: fuzz builds use sanitizer flags that would rebuild the main ones.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build -O >/dev/null 2>&1 || cargo fuzz build -O || exit 2

status=0
printf '%-18s %12s %8s %8s\n' target runs seconds crashes
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    before=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    start=$(date +%s)
    # -jobs=1: the machine is shared; -rss_limit_mb bounds a runaway case.
    cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -jobs=1 -workers=1 \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    elapsed=$(( $(date +%s) - start ))
    after=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    crashes=$(( after - before ))
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes="rc=$rc"; fi
    printf '%-18s %12s %8s %8s\n' "$t" "${runs:-?}" "$elapsed" "$crashes"
    if [ "$rc" -ne 0 ]; then
        status=1
        grep -m3 -E 'panicked|ERROR|SUMMARY' "$log" | sed 's/^/    /'
    fi
done
exit $status
