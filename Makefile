# The two commands of the README.  Both set up everything on a fresh machine first.
.PHONY: setup demo test

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/seismo demo

test: setup
	./scripts/test.sh
