# The two Quick start commands: `make up` runs the whole system on its embedded default,
# `make test` runs the whole test suite. Both install what is missing first: `make up` only
# what building and running fhirguard needs, `make test` and `make bench` also their own
# tools (scripts/apt-packages.txt, one section per command).
.PHONY: install install-test install-bench up test bench hapi
install:
	@scripts/install.sh run
install-test:
	@scripts/install.sh test
install-bench:
	@scripts/install.sh bench
up: install
	./bin/fhirguard up
# fhirguard around HAPI FHIR on PostgreSQL, the example of an operator's own server (docs/confine-your-server.md).
hapi: install
	examples/hapi/up.sh
test: install-test
	@scripts/test.sh
bench: install-bench
	node dist/bench/run.js
