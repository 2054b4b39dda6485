# Developer entry points. `make` alone lists them.
.DEFAULT_GOAL := help
ARGS ?=

.PHONY: help up down test build lint fmt clean-run

help: ## show this help
	@echo "make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 14

up: ## start RabbitMQ/PostgreSQL/NATS if needed, build (release), run router + history + auth + gateway in the background
	@scripts/up.sh

down: ## stop gateway + auth + history + router, and the services that `make up` started
	@scripts/down.sh

test: ## fmt check, clippy, cargo test, then the integration suite (ARGS="-k name" goes to pytest)
	@scripts/test.sh $(ARGS)

build: ## debug build of the whole workspace
	cargo build --workspace

lint: ## rustfmt check + clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	cargo fmt --all

clean-run: ## remove .run (pid files, logs, the test venv); run `make down` first
	rm -rf .run
