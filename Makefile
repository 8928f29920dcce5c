# regtrigger — see README.md. Two commands matter to a newcomer:
#   make run    the local all-in-one (make run ADDR=127.0.0.1:8081 SINK=127.0.0.1:9001)
#   make test   every test

GO        ?= go
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN       := bin/regtrigger
FUZZTIME  ?= 20s

# The version every build target stamps into its binaries (regtrigger
# --version, the User-Agent of deliveries, the functions' logs).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# make run / make sink: where serve listens, where the sink listens (the
# example triggers deliver there), the store file. Each can also come from
# the environment (ADDR=... make run).
ADDR      ?= 127.0.0.1:8080
SINK      ?= 127.0.0.1:9000
DATA      ?= ./regtrigger.db

.PHONY: all build run sink test test-deps lint fmt bench fuzz clean

all: lint test build

build:
	@echo "== go build $(BIN), version $(VERSION) (the first build downloads and compiles the dependencies: a minute or so)"
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/regtrigger

# The example triggers (examples/local-triggers.yaml) deliver to
# http://$REGTRIGGER_SINK/..., which serve may reach because of
# --allow-private 127.0.0.1/32: keep SINK on 127.0.0.1.
run: build
	@echo "regtrigger serve: receiver + dispatcher + embedded store ($(DATA), kept between runs) on http://$(ADDR)"
	@echo "Deliveries go to 'regtrigger sink' on $(SINK): start it in another terminal with  make sink$(if $(filter-out 127.0.0.1:9000,$(SINK)), SINK=$(SINK))"
	@echo "Then send a Tencent TCR push notification:"
	@echo "  curl -sS -X POST -H 'Content-Type: application/json' --data-binary @events/bodies/tcr-push.json http://$(ADDR)/v1/notify"
	@echo "and read the trigger log (after stopping serve with Ctrl-C):  ./$(BIN) logs --data $(DATA)"
	@echo
	REGTRIGGER_SINK=$(SINK) ./$(BIN) serve --addr $(ADDR) --data $(DATA) --triggers examples/local-triggers.yaml --allow-private 127.0.0.1/32 --retry-schedule 5s,30s,2m

# A local webhook target that prints what regtrigger sends.
sink: build
	./$(BIN) sink --addr $(SINK) --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags scf ./functions/...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags scf ./functions/...

fmt:
	gofmt -w .

# Benchmarks behind docs/benchmarks.md.
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=5 ./... | tee bench.txt

# Run every fuzz target for FUZZTIME each.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin bench.txt $(DATA) $(DATA)-journal dist .aws-sam

# What the tests run besides Go: the API-compatible AWS servers the
# integration tests start on loopback (dynalite for DynamoDB, fauxqs 1.9.2
# for SQS) and the Serverless Framework 3 whose `serverless package` output
# internal/deploy lints and compares, pinned in tools/node for Node.js 20 or
# newer; and cfn-lint with aws-sam-translator (whose SAM transform
# tools/samtranslate/translate.py runs offline), Python tools the machine
# image ships.
# The Lambda Runtime Interface Emulator is a Go tool (go.mod), built by the
# e2e tests. npm ci runs only when package.json or the lock file differ from
# what the last install used (a copy kept in node_modules); tools/node/.npmrc
# makes it refuse a dependency that does not support the running Node
# (engine-strict) and run no install scripts.
CFN_LINT_INSTALL := pip install cfn-lint==1.51.0 aws-sam-translator==1.110.0
NODE_DIR   := tools/node
NODE_STAMP := $(NODE_DIR)/node_modules/.regtrigger-installed

test-deps:
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "make test needs Node.js 20 or newer and npm (for the test servers in $(NODE_DIR))"; exit 1; }
	@node -e 'const m = +process.versions.node.split(".")[0]; if (m < 20) { console.error("Node.js " + process.version + " is too old: the test servers in $(NODE_DIR) need Node.js 20 or newer"); process.exit(1) }'
	@if cat $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json | cmp -s - $(NODE_STAMP); then \
	  echo "== test tools: installed ($(NODE_DIR) unchanged since the last npm ci)"; \
	else \
	  echo "== test tools: npm ci --prefix $(NODE_DIR)"; \
	  npm ci --prefix $(NODE_DIR) && cat $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json > $(NODE_STAMP); \
	fi
	@command -v redis-server >/dev/null 2>&1 && redis-server --version || \
	  echo "redis-server is not installed: the Redis tests fail without it. Install it: apt-get install -y redis-server"
	@command -v cfn-lint >/dev/null 2>&1 && cfn-lint --version || \
	  echo "cfn-lint is not installed: internal/deploy's TestCfnLint skips here and fails in CI. Install it: $(CFN_LINT_INSTALL)"
	@python3 -c 'import samtranslator; print("aws-sam-translator", samtranslator.__version__)' 2>/dev/null || \
	  echo "python3 cannot import samtranslator: internal/deploy's template tests skip here and fail in CI. Install it: $(CFN_LINT_INSTALL)"

# --- AWS Lambda: template.yaml (SAM) and serverless.yml; see docs/aws.md ------
# sam build (BuildMethod: makefile) runs `make build-<LogicalId>` with
# ARTIFACTS_DIR set; `make package` builds the same binaries into the zips that
# serverless.yml deploys. Linux arm64 (Graviton), static, without aws-lambda-go's
# legacy RPC mode (lambda.norpc): the provided.al2023 runtime runs bootstrap.
LAMBDA_ENV    := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
LAMBDA_BUILD  = $(LAMBDA_ENV) $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
DIST          := dist

.PHONY: build-ReceiverFunction build-DispatcherFunction package

build-ReceiverFunction:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it (for zips, run make package)"; exit 2; }
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/receiver

build-DispatcherFunction:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it (for zips, run make package)"; exit 2; }
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/dispatcher

# dist/receiver.zip and dist/dispatcher.zip, each holding one executable
# bootstrap, zipped by a standard-library Go tool (no zip command needed).
package:
	rm -rf $(DIST)/receiver $(DIST)/dispatcher $(DIST)/receiver.zip $(DIST)/dispatcher.zip
	$(MAKE) --no-print-directory build-ReceiverFunction ARTIFACTS_DIR=$(CURDIR)/$(DIST)/receiver
	$(MAKE) --no-print-directory build-DispatcherFunction ARTIFACTS_DIR=$(CURDIR)/$(DIST)/dispatcher
	$(GO) run ./tools/zipdir -o $(DIST)/receiver.zip $(DIST)/receiver
	$(GO) run ./tools/zipdir -o $(DIST)/dispatcher.zip $(DIST)/dispatcher
	@ls -l $(DIST)/receiver.zip $(DIST)/dispatcher.zip

# --- Tencent SCF: the same functions on SCF's Go runtime; see docs/tencent-scf.md
# SCF starts the executable named by the function's handler ("main") from the
# zip's root; its Go runtime is linux/amd64 and calls the binary over net/rpc
# (scf-go-lib), selected by the scf build tag.
SCF_BUILD = GOOS=linux GOARCH=amd64 CGO_ENABLED=0 $(GO) build -tags scf -trimpath -ldflags "-s -w -X main.version=$(VERSION)"

.PHONY: build-scf

build-scf:
	rm -rf $(DIST)/scf
	$(SCF_BUILD) -o $(DIST)/scf/receiver/main ./functions/receiver
	$(SCF_BUILD) -o $(DIST)/scf/dispatcher/main ./functions/dispatcher
	$(GO) run ./tools/zipdir -o $(DIST)/scf/receiver.zip $(DIST)/scf/receiver
	$(GO) run ./tools/zipdir -o $(DIST)/scf/dispatcher.zip $(DIST)/scf/dispatcher
	@ls -l $(DIST)/scf/receiver.zip $(DIST)/scf/dispatcher.zip

# --- Measurements behind docs/benchmarks.md (issues 4 and 5) -----------------
# Minutes each, on loopback; not part of make test. measure-serve runs
# tools/loadgen against bin/regtrigger; measure-aws counts the functions' AWS
# requests (internal/cloud) and times the built binaries' starts and logs
# (functions/e2e) on dynalite and fauxqs; measure-sizes builds both packages.
.PHONY: measure measure-serve measure-aws measure-sizes

measure: measure-serve measure-aws measure-sizes

measure-serve: build
	$(GO) run ./tools/loadgen -bin $(BIN)

measure-aws: test-deps
	REGTRIGGER_MEASURE=1 $(GO) test -run '^(TestRequestsPerNotification|TestCostPerScenario)$$' -v -count=1 ./internal/cloud
	REGTRIGGER_MEASURE=1 $(GO) test -run '^TestMeasure' -v -count=1 ./functions/e2e

measure-sizes: package build-scf
	@ls -l $(DIST)/receiver/bootstrap $(DIST)/dispatcher/bootstrap $(DIST)/receiver.zip $(DIST)/dispatcher.zip \
	  $(DIST)/scf/receiver/main $(DIST)/scf/dispatcher/main $(DIST)/scf/receiver.zip $(DIST)/scf/dispatcher.zip
