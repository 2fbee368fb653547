#!/usr/bin/env bash
# Runs the GPU check from a bundle made by build.sh, on a machine with the NVIDIA driver and a
# CUDA toolkit (no Rust toolchain, no network). Everything it prints goes to OUTPUT_DIR:
#
#   run.sh OUTPUT_DIR [nextest arguments...]
#
# GPU_CHECK_FILTER, a nextest filterset, narrows the strict run (e.g. on a one-GPU machine:
# GPU_CHECK_FILTER='not test(=copies_between_two_devices)'). GPU_CHECK_TOOLKITS is where toolkits
# are looked for (cuda-X.Y directories; default /usr/local). GPU_CHECK_LIMIT is how many seconds
# the strict run may take (default 400), so that the run after it and the record still fit in a
# caller's limit of 9 minutes: past it the run is stopped, and the record says so.
#
#   machine.txt    date, glibc, kernel, nvidia-smi, the loader's path and its cache's CUDA
#                  libraries; the checkout's revision, the NVRTC chosen (a toolkit's or a
#                  wheel's), and the tests left out under compute mode Exclusive_Process
#   doctor.txt     gpu-doctor, for people     doctor.json   the same as JSON
#   tests.txt      every GPU test, GPU_TEST_STRICT=1: an unmet requirement fails, and so does a
#                  run that selects no test
#   report.json    GPU_TEST_REPORT of that run
#   skips.txt      the test that needs more memory than any GPU has, without strict mode: its
#                  skip reason
#   entry.md       all of the above as an entry for docs/gpu-runs.md; written also where run.sh
#                  is stopped before its end (a signal, a caller's time limit), saying so
#
# The checkout the bundle lies in (its parent directory, or GPU_CHECK_WORKSPACE) must be the
# revision the bundle was built from (where git tells the checkout's, another is refused).
# Exit status: that of the strict test run (nextest's: 100 when a test failed; 124 when it was
# stopped at GPU_CHECK_LIMIT), or 3 when the bundle cannot run here (an output folder that cannot
# be made, a glibc older than the bundle's programs need, a checkout of another revision, which
# machine.txt then names), or 128 + the signal's number when a signal stopped it (143: TERM).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: run.sh OUTPUT_DIR [nextest arguments...]}"
shift
workspace="${GPU_CHECK_WORKSPACE:-$(cd "$here/.." && pwd)}"
mkdir -p "$out" || exit 3
out="$(cd "$out" && pwd)" || exit 3
strict_limit="${GPU_CHECK_LIMIT:-400}"
if ! [[ "$strict_limit" =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: GPU_CHECK_LIMIT=$strict_limit is not a number of seconds (a whole number above 0," \
        "as 400)" | tee "$out/machine.txt" >&2
    exit 3
fi
# What is removed when the script ends. (Arrays are expanded as ${a[@]+"${a[@]}"}: bash before
# 4.4 takes an empty one for unset under `set -u`.)
cleanup=()
# The step under way, the strict run's status once it has one, the nextest running (its
# `timeout`), and whether the record is due: what the end of the script needs, however it comes.
step="starting" status="" running="" entry_due=""
finish() {
    local code=$? waited
    # A second signal (a caller's, after its first) must not cut the record short.
    trap '' HUP INT TERM
    # Stopped mid-run: the run is asked to stop and given 5 s to say so (a caller's time limit
    # kills the script 10 s after its signal), then the record is written, which asks the
    # machine nothing more.
    if [ -n "$running" ]; then
        kill -TERM "$running" 2> /dev/null
        for waited in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$running" 2> /dev/null || break
            sleep 0.5
        done
    fi
    if [ -n "$entry_due" ]; then
        write_entry > "$out/entry.md.part" 2>&1 && mv -f "$out/entry.md.part" "$out/entry.md"
    fi
    rm -rf ${cleanup[@]+"${cleanup[@]}"}
    exit "$code"
}
trap finish EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
# The programs' modes may not have travelled with the bundle.
for program in cargo-nextest gpu-doctor; do
    [ -x "$here/$program" ] || chmod u+x "$here/$program" 2> /dev/null
done
# nextest unpacks the archive's test binaries to run them: beside the bundle, which holds programs
# that run, rather than in a temporary directory that may be mounted noexec; in a directory of
# this run's own, so that two runs of one bundle keep apart.
extract=()
if extracted="$(mktemp -d "$here/extracted.XXXXXX" 2>/dev/null)"; then
    cleanup+=("$extracted")
    extract=(--extract-to "$extracted" --extract-overwrite)
fi
# The gpu-check profile (.config/nextest.toml) runs one test at a time and stops one that hangs;
# nextest's variables for test threads and retries would override it. What passing tests printed
# (their devices, their GPU timing lines) follows the run.
# It runs for at most $1 seconds (its status is then 124), in the background, so that a signal to
# the script is taken at once.
nextest() {
    local limit="$1" code within=()
    shift
    # A simple command run in the background is its own process: a signal to $running reaches
    # timeout, which passes it on to the run.
    # The time to kill it outlasts nextest's own grace for its tests (10 s), so that a stopped
    # run is one nextest ended, with its summary, rather than one killed with it.
    if command -v timeout > /dev/null; then
        within=(timeout -k 30 "$limit")
    fi
    ${within[@]+"${within[@]}"} env -u NEXTEST_TEST_THREADS -u NEXTEST_RETRIES \
        "$here/cargo-nextest" nextest run --archive-file "$here/tests.tar.zst" ${extract[@]+"${extract[@]}"} \
        --workspace-remap "$workspace" --profile gpu-check --no-fail-fast \
        --status-level all --final-status-level all --success-output final "$@" &
    running=$!
    wait "$running"
    code=$?
    running=""
    return "$code"
}
# The entry for docs/gpu-runs.md: a heading naming the date, GPU, driver, toolkit and bundle,
# then every file as it is (as far as it got, where the script was stopped during $step).
# It runs nothing that could hang: the GPU and the toolkit were named (`gpu`, `toolkit`) before
# any test ran.
write_entry() {
    local file
    echo "## $(date -u +%Y-%m-%d): ${gpu:-no GPU named by nvidia-smi}, toolkit ${toolkit:-unknown}"
    echo
    echo -n "Bundle: $built, CUDA $(cat "$here/cuda") bindings."
    if [ -n "$status" ]; then
        echo -n " The strict run exited $status."
    fi
    if [ -n "$step" ]; then
        echo -n " run.sh was stopped (by a signal: a caller's time limit, say) during $step, before its" \
            "end; the files below are as far as they got."
    fi
    echo
    for file in machine.txt doctor.txt doctor.json tests.txt skips.txt report.json; do
        echo
        echo "### $file"
        echo
        echo '```text'
        cat "$out/$file" 2> /dev/null || echo "(not written)"
        # A file that does not end its last line would swallow the closing fence.
        [ -z "$(tail -c 1 "$out/$file" 2> /dev/null)" ] || echo
        echo '```'
    done
}
# Runs the command after $1 for at most $1 seconds (its status is then 124), with coreutils'
# timeout where there is one: nvidia-smi or a test run can hang on a wedged GPU.
bounded() {
    local limit="$1"
    shift
    if command -v timeout > /dev/null; then
        timeout -k 10 "$limit" "$@"
    else
        "$@"
    fi
}
# Whether version $1 is not newer than $2 (X.Y or X.Y.Z, or words then a version).
not_newer() {
    [ "$(printf '%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$2" ]
}
# The oldest glibc the bundle's programs run on (build.sh), and this machine's: on an older one
# they would not start, and every file below would say only that.
needs_glibc="$(grep -xE '[0-9]+\.[0-9]+' "$here/glibc" 2>/dev/null || true)"
has_glibc="$(getconf GNU_LIBC_VERSION 2>/dev/null | sed -n 's/^glibc //p')"
needs="${needs_glibc:+needs glibc $needs_glibc or newer}"
# The bundle's revision, with the files that differed from it when it was built.
changed="$(grep -c . "$here/changes" 2>/dev/null || true)"
built="revision $(cat "$here/revision")"
if [ "${changed:-0}" -gt 0 ]; then
    built+=" with uncommitted changes to $changed file(s)"
fi
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "bundle: $built, CUDA $(cat "$here/cuda") bindings, ${needs:-no glibc version recorded}"
    if [ "${changed:-0}" -gt 0 ]; then
        sed 's/^/bundle: uncommitted: /' "$here/changes"
    fi
    if [ -n "$has_glibc" ]; then
        echo "glibc: $has_glibc"
    else
        echo "glibc: not told by getconf GNU_LIBC_VERSION (not glibc, or no getconf): the programs may not start"
    fi
    uname -a
    bounded 60 nvidia-smi 2>&1 || echo "nvidia-smi: not available, or it did not answer within a minute"
    # Where the loader finds the CUDA libraries: what decides which NVRTC the tests get.
    echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH-}"
    echo "PATH=${PATH-}"
    ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libnvrtc' || echo "ld.so.cache: no libcuda or libnvrtc"
} > "$out/machine.txt" 2>&1
if [ -n "$has_glibc" ] && [ -n "$needs_glibc" ] &&
    ! not_newer "$needs_glibc" "$has_glibc"; then
    echo "run.sh: the bundle's programs need glibc $needs_glibc or newer, and this machine has glibc $has_glibc;" \
        "build the bundle where glibc is $has_glibc or older (in a container of this machine's" \
        "distribution, say): programs linked there run here" | tee -a "$out/machine.txt" >&2
    exit 3
fi
# The GPUs' persistence and compute modes, asked once (after the lines above are in machine.txt,
# in case nvidia-smi hangs): the record shows them, and which tests run depends on the compute mode.
modes="$(bounded 60 nvidia-smi --query-gpu=persistence_mode,compute_mode --format=csv,noheader 2>/dev/null || true)"
# The archive's tests read the checkout's files (fixtures, .config/nextest.toml): another
# revision's are not the ones they were built with, and the record would not be of the bundle's.
built_from="$(cat "$here/revision" 2>/dev/null || echo unknown)"
# Only a checkout whose own top is the workspace: an unpacked copy inside another repository is
# not that repository's revision.
checkout=""
if [ "$(git -C "$workspace" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$workspace" && pwd -P)" ]; then
    checkout="$(git -C "$workspace" rev-parse HEAD 2>/dev/null || true)"
fi
if [ -z "$checkout" ]; then
    echo "checkout: $workspace is not a git checkout of its own here (or there is no git): its revision" \
        "is not checked against the bundle's" >> "$out/machine.txt"
elif [ "$built_from" != unknown ] && [ "$checkout" != "$built_from" ]; then
    echo "run.sh: the bundle was built from revision $built_from, and the checkout at $workspace is at" \
        "$checkout; build the bundle from this checkout (examples/gpu-check/build.sh), or check out" \
        "$built_from" | tee -a "$out/machine.txt" >&2
    exit 3
fi
# The machine as the check finds it, and what it changes for the run (recorded, never the GPU's
# own settings): an empty entry in LD_LIBRARY_PATH (a trailing `:`) is one the doctor rightly
# warns about, and the newest toolkit not newer than the driver's CUDA version goes first on the
# loader's path, where there is one under /usr/local (or GPU_CHECK_TOOLKITS), else the newest
# Python wheel's NVRTC not newer than it: a newer NVRTC writes PTX this driver refuses, and its
# tests are skipped.
{
    echo "persistence mode, compute mode: ${modes:+$(printf '%s\n' "$modes" | tr '\n' ';')}"
    cleaned="$(printf '%s' "${LD_LIBRARY_PATH-}" | tr ':' '\n' | grep -v '^$' | paste -sd: -)"
    if [ "${LD_LIBRARY_PATH-}" != "$cleaned" ]; then
        echo "run.sh: LD_LIBRARY_PATH without its empty entries: ${cleaned:-(unset)}"
    fi
    if [ -n "$cleaned" ]; then export LD_LIBRARY_PATH="$cleaned"; else unset LD_LIBRARY_PATH; fi
    driver_cuda="$(bounded 60 nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)"
    toolkits="${GPU_CHECK_TOOLKITS:-/usr/local}"
    # Absolute: the tests run in other directories.
    toolkits="$(cd "$toolkits" 2>/dev/null && pwd || echo "$toolkits")"
    # The newest cuda-X.Y (or X.Y.Z) with an NVRTC that is not newer than the driver's CUDA X.Y;
    # of those, one with the unversioned libnvrtc.so, the name cudarc asks the loader for first.
    best="" best_rank=""
    for dir in "$toolkits"/cuda-[0-9]*; do
        [[ "${dir##*/cuda-}" =~ ^([0-9]+)\.([0-9]+)(\.[0-9]+)?$ ]] || continue
        version="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
        [ -n "$driver_cuda" ] && ls "$dir"/lib64/libnvrtc.so* > /dev/null 2>&1 || continue
        not_newer "$version" "$driver_cuda" || continue
        if [ -e "$dir/lib64/libnvrtc.so" ]; then unversioned=1; else unversioned=0; fi
        rank="$unversioned $version"
        if [ -z "$best" ] || not_newer "$best_rank" "$rank"; then
            best="$dir" best_rank="$rank"
        fi
    done
    if [ -z "$driver_cuda" ]; then
        echo "run.sh: nvidia-smi names no CUDA version; the loader's NVRTC is used"
    elif [ -n "$best" ]; then
        export LD_LIBRARY_PATH="$best/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export PATH="$best/bin:$PATH" CUDA_HOME="$best"
        echo "run.sh: the newest toolkit not newer than the driver's CUDA $driver_cuda goes first: $best" \
            "(doctor.txt names the NVRTC the tests load)"
        if [ ! -e "$best/lib64/libnvrtc.so" ]; then
            echo "run.sh: $best/lib64 has no libnvrtc.so, the name cudarc asks the loader for first:" \
                "one elsewhere on the loader's path may be loaded instead"
        fi
    else
        there="$(ls -d "$toolkits"/cuda-[0-9]* 2>/dev/null | paste -sd' ' -)"
        echo "run.sh: no toolkit in $toolkits up to the driver's CUDA $driver_cuda (there: ${there:-none});" \
            "the loader's NVRTC is used unless a Python wheel's will do"
        # NVIDIA's wheels (PyTorch brings one): nvidia/cuda_nvrtc/lib up to CUDA 12, nvidia/cuXY/lib
        # from 13. Their release is that of the builtins beside (libnvrtc-builtins.so.X.Y); the
        # newest not newer than the driver's CUDA goes first, under the name cudarc asks the
        # loader for first (libnvrtc.so, which wheels lack) in a private directory of links.
        wheel="" wheel_version="" library=""
        # The system's site-packages and the user's (`pip install --user`).
        packages="$(python3 -c 'import site; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' \
            2>/dev/null || true)"
        while IFS= read -r site_dir; do
            for lib in "$site_dir"/nvidia/cuda_nvrtc/lib "$site_dir"/nvidia/cu[0-9]*/lib; do
                for builtins in "$lib"/libnvrtc-builtins.so.[0-9]*.[0-9]*; do
                    [ -e "$builtins" ] || continue
                    [[ "${builtins##*/libnvrtc-builtins.so.}" =~ ^([0-9]+)\.([0-9]+)$ ]] || continue
                    version="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
                    found="$(ls "$lib"/libnvrtc.so.[0-9]* 2>/dev/null | head -n 1)"
                    if [ -z "$found" ]; then
                        echo "run.sh: a Python wheel's NVRTC builtins, CUDA $version, without libnvrtc.so.N: $lib"
                        continue
                    fi
                    echo "run.sh: a Python wheel's NVRTC, CUDA $version: $lib"
                    not_newer "$version" "$driver_cuda" || continue
                    if [ -z "$wheel" ] || not_newer "$wheel_version" "$version"; then
                        wheel="$lib" wheel_version="$version" library="$found"
                    fi
                done
            done
        done <<< "$packages"
        if [ -z "$wheel" ]; then
            echo "run.sh: no Python wheel's NVRTC up to the driver's CUDA $driver_cuda either"
        elif links="$(mktemp -d)"; then
            cleanup+=("$links")
            ln -s "$library" "$links/libnvrtc.so"
            export LD_LIBRARY_PATH="$links:$wheel${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            echo "run.sh: the NVRTC of the Python wheel of CUDA $wheel_version, not newer than the driver's" \
                "CUDA $driver_cuda, goes first: $library (doctor.txt names the NVRTC the tests load)"
        fi
    fi
} >> "$out/machine.txt" 2>&1
# For the record's heading, asked now: at the end a wedged GPU could keep nvidia-smi from answering.
gpu="$(bounded 20 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1)"
nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
toolkit="$(bounded 20 "$nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\),.*/\1/p' | head -n 1)"
entry_due=1
step="the doctor"
"$here/gpu-doctor" > "$out/doctor.txt" 2>&1
echo "exit status: $?" >> "$out/doctor.txt"
# What the JSON run says on stderr goes with the text, to keep the folder to the 8 files a
# device run brings back (written beside them, then removed: a temporary file that could not be
# made would leave the JSON empty).
json_stderr="$out/.doctor-json-stderr"
"$here/gpu-doctor" --json > "$out/doctor.json" 2> "$json_stderr"
if [ -s "$json_stderr" ]; then
    echo "gpu-doctor --json wrote to stderr:" >> "$out/doctor.txt"
    cat "$json_stderr" >> "$out/doctor.txt"
fi
rm -f "$json_stderr"

# A test that starts a second process on the GPU its own body holds cannot pass where a GPU takes
# one process at a time: left out there, and recorded, rather than failed for the machine's
# setting, which the check never changes.
one_process=""
if grep -q Exclusive_Process <<< "$modes"; then
    one_process="not (test(=a_faulting_kernel_is_named_and_poisons_only_its_process)"
    one_process+=" | test(=a_second_process_waits_for_the_gpu_the_first_holds) | test(=a_leak_fails_the_leak_check))"
    echo "run.sh: a GPU is in compute mode Exclusive_Process, which lets one process at a time use it;" \
        "the tests that start a second process on it are left out: $one_process" >> "$out/machine.txt"
fi
filter="not test(=needs_more_memory_than_any_gpu_has) and ${one_process:+$one_process and }(${GPU_CHECK_FILTER:-all()})"
step="the strict run"
echo "filter: $filter" > "$out/tests.txt"
started=$SECONDS
GPU_TEST_STRICT=1 GPU_TEST_REPORT="$out/report.json" \
    nextest "$strict_limit" --no-tests=fail -E "$filter" "$@" >> "$out/tests.txt" 2>&1
status=$?
# Killed (137) where stopping it took too long.
if [ "$status" = 124 ] || { [ "$status" = 137 ] && [ $((SECONDS - started)) -ge "$strict_limit" ]; }; then
    echo "run.sh: the strict run was stopped after $strict_limit s (GPU_CHECK_LIMIT)" >> "$out/tests.txt"
fi
echo "exit status: $status" >> "$out/tests.txt"

step="the run without strict mode"
nextest 90 --no-tests=warn -E 'test(=needs_more_memory_than_any_gpu_has)' > "$out/skips.txt" 2>&1
echo "exit status: $?" >> "$out/skips.txt"
step=""
echo "run.sh: the strict run exited $status; output in $out (entry.md is the record for docs/gpu-runs.md)"
exit "$status"
