#!/usr/bin/env bash
# Make the Rust build of featrs work with or without crates.io.
#
# With crates.io reachable cargo needs nothing from us. Without it, the crates come from
# Debian's packages (librust-pyo3-dev, librust-rayon-dev) under /usr/share/cargo/registry:
# we install them when we can and write a *local, git-ignored* .cargo/config.toml that
# replaces crates.io with that directory. Set CHESTCT_CARGO_SOURCE=crates-io or =debian
# to skip the probe.
set -euo pipefail
cd "$(dirname "$0")/.."
registry=/usr/share/cargo/registry
mode=${CHESTCT_CARGO_SOURCE:-auto}

if [ -f .cargo/config.toml ] && grep -q "$registry" .cargo/config.toml && [ "$mode" != crates-io ]; then
    exit 0
fi
if [ "$mode" = auto ]; then
    if timeout 30 cargo fetch --manifest-path featrs/Cargo.toml >/dev/null 2>&1; then
        echo "cargo-source: crates.io is reachable, using it"
        exit 0
    fi
    echo "cargo-source: crates.io is unreachable, using Debian's Rust crate packages"
    mode=debian
fi
[ "$mode" = debian ] || exit 0

if ! ls -d "$registry"/pyo3-0.17* "$registry"/rayon-1.* >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librust-pyo3-dev librust-rayon-dev >/dev/null
    else
        echo "cargo-source: need Debian packages librust-pyo3-dev and librust-rayon-dev:" >&2
        echo "    sudo apt-get install librust-pyo3-dev librust-rayon-dev" >&2
        exit 1
    fi
fi
mkdir -p .cargo
cat > .cargo/config.toml <<CFG
# Written by scripts/cargo-source.sh: crates.io is unreachable here. Not committed.
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$registry"
CFG
rm -f featrs/Cargo.lock
