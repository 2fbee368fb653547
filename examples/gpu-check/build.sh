#!/usr/bin/env bash
# Builds the GPU check bundle on any machine with the Rust toolchain and cargo-nextest (no GPU
# needed): a nextest archive of the example GPU tests, cargo-nextest itself, gpu-doctor and
# run.sh. Copy the bundle into a checkout of the same revision on a GPU machine, which needs only
# the NVIDIA driver and a CUDA toolkit, and run `<bundle>/run.sh <output folder>` there. Its
# programs may need a glibc as new as this machine's: build it where glibc is no newer than the
# GPU machine's (in a container of that machine's distribution, say).
#
#   examples/gpu-check/build.sh [--cuda 12|13] [BUNDLE_DIR]   (default: gpu-bundle in the checkout)
#
# --cuda picks the cudarc bindings, and with them the NVRTC names searched: CUDA 12.x toolkits
# install libnvrtc.so.12, CUDA 13.x libnvrtc.so.13 (the 13 bindings find both). Default: 12.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cuda=12
bundle=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cuda) cuda="${2:?--cuda needs 12 or 13}"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        -*) echo "build.sh: unknown option $1" >&2; exit 2 ;;
        *) bundle="$1"; shift ;;
    esac
done
case "$cuda" in
    12) features="cuda-12080" ;;
    13) features="cuda-13000" ;;
    *) echo "build.sh: --cuda $cuda: expected 12 or 13" >&2; exit 2 ;;
esac
# run.sh takes the bundle's parent for the checkout, so the default bundle lies in its root.
bundle="${bundle:-$root/gpu-bundle}"
mkdir -p "$bundle"
bundle="$(cd "$bundle" && pwd)"
nextest="$(command -v cargo-nextest || true)"
if [ -z "$nextest" ]; then
    echo "build.sh: cargo-nextest is not installed (cargo install cargo-nextest --locked)" >&2
    exit 1
fi
cd "$root"
# The gpu-check profile (the workspace's Cargo.toml) drops debug info: the bundle must stay small.
cargo nextest archive -p gpu-test-examples --cargo-profile gpu-check \
    --no-default-features --features "$features" \
    --archive-file "$bundle/tests.tar.zst"
cargo build -p gpu-test-runtime --bin gpu-doctor --profile gpu-check \
    --no-default-features --features "$features"
cp "${CARGO_TARGET_DIR:-$root/target}/gpu-check/gpu-doctor" "$bundle/gpu-doctor"
cp "$nextest" "$bundle/cargo-nextest"
cp "$root/examples/gpu-check/run.sh" "$bundle/run.sh"
chmod +x "$bundle/run.sh" "$bundle/gpu-doctor" "$bundle/cargo-nextest"
git -C "$root" rev-parse HEAD > "$bundle/revision" 2>/dev/null || echo unknown > "$bundle/revision"
# Files changed since that commit, or new and not ignored, which the bundle may have been built
# with: run.sh records them, so that a record never passes for the commit's alone.
git -C "$root" status --porcelain > "$bundle/changes" 2>/dev/null || : > "$bundle/changes"
echo "$cuda" > "$bundle/cuda"
# The oldest glibc the bundle runs on: the newest symbol version any of its programs asks for
# (GLIBC_2.34, say), which is no newer than this machine's glibc. run.sh compares it with the GPU
# machine's before anything fails to start.
tests="$(cargo nextest list -p gpu-test-examples --cargo-profile gpu-check \
    --no-default-features --features "$features" \
    --list-type binaries-only --message-format json |
    { grep -o '"binary-path":"[^"]*"' || true; } | cut -d'"' -f4)"
if [ -z "$tests" ]; then
    echo "build.sh: cargo nextest list named no test binary of gpu-test-examples" >&2
    exit 1
fi
programs=("$bundle/gpu-doctor" "$bundle/cargo-nextest")
while IFS= read -r binary; do
    if [ ! -f "$binary" ]; then
        echo "build.sh: nextest lists the test binary '$binary', which is not a file" >&2
        exit 1
    fi
    programs+=("$binary")
done <<< "$tests"
glibc="$({ grep -ahoE 'GLIBC_2\.[0-9]+' "${programs[@]}" || true; } | cut -d_ -f2 | sort -uV | tail -n 1)"
echo "${glibc:-unknown}" > "$bundle/glibc"
size=$(du -sb "$bundle" | cut -f1)
limit=$((64 * 1024 * 1024))
echo "build.sh: bundle in $bundle, $((size / 1024 / 1024)) MiB; it runs where glibc is ${glibc:-(unknown)} or newer"
if [ "$size" -gt "$limit" ]; then
    echo "build.sh: the bundle is $size bytes, over the 64 MiB limit" >&2
    exit 1
fi
