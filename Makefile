# The two Quick start commands: `make up` runs the whole system on its embedded default,
# `make test` runs the whole test suite. Both install what is missing first.
.PHONY: install up test bench
install:
	@scripts/install.sh
up: install
	./bin/fhirguard up
test: install
	@scripts/test.sh
bench: install
	node dist/bench/run.js
