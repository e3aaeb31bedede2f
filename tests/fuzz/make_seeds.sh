#!/bin/sh
# Rewrites the seed corpora of tests/fuzz (regression inputs, regress-*, are kept). Run from anywhere.
set -eu
cd "$(dirname "$0")/../.."
mkdir -p build/fuzz tests/fuzz/corpus/fuzz_session
${CC:-cc} -O1 -o build/fuzz/make_session_seed tests/fuzz/make_session_seed.c -lm -lpthread -ldl
build/fuzz/make_session_seed tests/fixtures/llama_gqa1 tests/fuzz/corpus/fuzz_session
build/fuzz/make_session_seed tests/fixtures/gptoss_mxfp4 tests/fuzz/corpus/fuzz_session 0
build/fuzz/make_session_seed tests/fixtures/qwen3next_new tests/fuzz/corpus/fuzz_session 1
python3 tests/fuzz/make_seeds.py
