#!/usr/bin/env bash
# Fetch real speech for tests, the demo and benchmarks into .cache/data (never committed).
#   librivox/, cards/  : pocketsphinx test data (BSD-2), from the pocketsphinx 5.1.1 source archive
#   pyannote/          : the pyannote.audio 4.0.7 two-speaker sample (MIT) with RTTM and STM references
set -euo pipefail
cd "$(dirname "$0")/.."
out=.cache/data
mkdir -p "$out" .cache/dl
pip_download() { .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps -d .cache/dl "$@"; }

if [ ! -f "$out/pyannote/sample.wav" ]; then
  pip_download "pyannote.audio==4.0.7"
  tmp=$(mktemp -d)
  .venv/bin/python -m zipfile -e .cache/dl/pyannote_audio-4.0.7-py3-none-any.whl "$tmp"
  mkdir -p "$out/pyannote"
  cp "$tmp"/pyannote/audio/sample/sample.{wav,rttm,stm} "$out/pyannote/"
  rm -rf "$tmp"
fi

if [ ! -f "$out/librivox/transcription" ]; then
  pip_download --no-binary :all: "pocketsphinx==5.1.1"
  tmp=$(mktemp -d)
  tar -xzf .cache/dl/pocketsphinx-5.1.1.tar.gz -C "$tmp"
  mkdir -p "$out"
  cp -r "$tmp"/pocketsphinx-5.1.1/test/data/librivox "$tmp"/pocketsphinx-5.1.1/test/data/cards "$out/"
  rm -rf "$tmp"
fi
