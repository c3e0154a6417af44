# Two entry points for a fresh machine: `make demo` (offline transcription with speaker labels)
# and `make test` (ruff, mypy, pytest). Each creates .venv and installs what it needs.
.PHONY: demo test bench env data clean

demo: data
	./scripts/bootstrap.sh
	.venv/bin/beluga transcribe .cache/data/pyannote/sample.wav --speakers

test: data
	./scripts/bootstrap.sh dev
	.venv/bin/ruff check src tests bench
	.venv/bin/mypy
	.venv/bin/pytest $(PYTEST_ARGS)

bench: data
	./scripts/bootstrap.sh dev
	.venv/bin/python -m bench.run_all

data:
	@[ -x .venv/bin/python ] || python3 -m venv .venv
	./scripts/fetch-data.sh

clean:
	rm -rf .venv .cache .mypy_cache .ruff_cache .pytest_cache
