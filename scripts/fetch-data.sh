#!/usr/bin/env bash
# Fetch real speech for tests, the demo and benchmarks into .cache/data (never committed).
#   librivox/, cards/  : pocketsphinx test data (BSD-2), from the pocketsphinx 5.1.1 source archive
#   pyannote/          : the pyannote.audio 4.0.7 two-speaker sample (MIT) with RTTM and STM references
#   ami/               : pyannote.audio 4.0.7's test data (MIT; from its source archive): 60 s excerpts of
#                        14 real AMI meetings (16 kHz mono) with RTTM references and UEMs (0-30 s scored);
#                        trñ00.wav is renamed trn00.wav, the name its RTTM uses
#   asterisk/<lang>/   : Asterisk's IVR prompts (CC-BY-SA-3.0) from Debian's asterisk-core-sounds-<lang>-wav
#                        packages (8 kHz WAV, one voice per language: en, es, fr, it, ru), with the
#                        transcripts from asterisk-core-sounds-<lang> as transcript.txt ("name: text")
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

# The sdist (pip cannot download it without building it): its address from the registry's simple
# index (PEP 691 JSON, what pip reads), its content checked against the pinned sha256.
ami_sdist=pyannote_audio-4.0.7.tar.gz
ami_sha256=3a903dfb5ca711d134cc2522561c9158b186836f5d62e8a57c46c6648e8a8229
if [ ! -f "$out/ami/debug.test.uem" ]; then
  .venv/bin/python - "$ami_sdist" "$ami_sha256" .cache/dl <<'PY'
import hashlib, json, pathlib, sys, urllib.request
name, sha256, folder = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
target = folder / name
if not target.is_file() or hashlib.sha256(target.read_bytes()).hexdigest() != sha256:
    request = urllib.request.Request(
        "https://pypi.org/simple/pyannote-audio/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    url = next(f["url"] for f in files if f["filename"] == name)
    with urllib.request.urlopen(url, timeout=300) as response:
        data = response.read()
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        sys.exit(f"fetch-data: {url} has sha256 {found}, expected {sha256}: not extracted")
    target.write_bytes(data)
PY
  tmp=$(mktemp -d)
  tar -xzf ".cache/dl/$ami_sdist" -C "$tmp" pyannote_audio-4.0.7/tests/data
  mkdir -p "$out/ami"
  for wav in "$tmp"/pyannote_audio-4.0.7/tests/data/*.wav; do
    base=$(basename "$wav")
    case "$base" in empty.wav) continue ;; tr*00.wav) base=trn00.wav ;; esac
    cp "$wav" "$out/ami/$base"
  done
  cp "$tmp"/pyannote_audio-4.0.7/tests/data/debug.*.{rttm,uem} "$out/ami/"
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

# Real non-English speech: Debian packages, via apt (`apt-get download` needs no root; the package
# lists must be current: `apt-get update` once). Skipped with a clear message where apt is missing.
asterisk_languages="en es fr it ru"
need_asterisk=""
for lang in $asterisk_languages; do
  [ -f "$out/asterisk/$lang/transcript.txt" ] || need_asterisk="$need_asterisk $lang"
done
if [ -n "$need_asterisk" ]; then
  if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "fetch-data: apt-get/dpkg not found: cannot fetch the Asterisk prompts (language tests and" \
         "bench/languages.py need them); on Debian/Ubuntu run this script again" >&2
  else
    tmp=$(mktemp -d)
    for lang in $need_asterisk; do
      packages="asterisk-core-sounds-$lang asterisk-core-sounds-$lang-wav"
      if ! (cd "$tmp" && apt-get download $packages >/dev/null 2>"$tmp/apt.err"); then
        if [ -z "${apt_updated:-}" ] && [ "$(id -u)" = 0 ]; then
          apt-get update >/dev/null 2>&1 || true
          apt_updated=1
        fi
        if ! (cd "$tmp" && apt-get download $packages >/dev/null 2>"$tmp/apt.err"); then
          echo "fetch-data: cannot download $packages: $(tail -1 "$tmp/apt.err")" \
               "(run \`sudo apt-get update\` once, then this script again)" >&2
          continue
        fi
      fi
      for deb in "$tmp"/asterisk-core-sounds-"$lang"_*.deb "$tmp"/asterisk-core-sounds-"$lang"-wav_*.deb; do
        dpkg -x "$deb" "$tmp/x-$lang"
      done
      voice=$(ls -d "$tmp/x-$lang"/usr/share/asterisk/sounds/*/ | head -1)
      mkdir -p "$out/asterisk/$lang"
      cp -r "$voice". "$out/asterisk/$lang/"
      cp "$tmp/x-$lang"/usr/share/doc/asterisk-core-sounds-"$lang"-wav/copyright "$out/asterisk/$lang/COPYRIGHT"
      # the transcript last: its presence marks the language as complete
      gzip -dc "$tmp/x-$lang"/usr/share/doc/asterisk-core-sounds-"$lang"/core-sounds-"$lang".txt.gz \
        > "$out/asterisk/$lang/transcript.txt"
    done
    rm -rf "$tmp"
  fi
fi
