# regtrigger — see README.md. Two commands matter to a newcomer:
#   make run    the local all-in-one
#   make test   every test

GO        ?= go
STATICCHECK = $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN       := bin/regtrigger
FUZZTIME  ?= 20s

.PHONY: all build run sink test test-deps lint fmt bench fuzz clean

all: lint test build

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/regtrigger

run: build
	@echo "regtrigger serve: receiver + dispatcher + embedded store (./regtrigger.db) on http://127.0.0.1:8080"
	@echo "Deliveries go to 'regtrigger sink' on 127.0.0.1:9000: start it in another terminal with  make sink"
	@echo "Then send a Tencent TCR push notification:"
	@echo "  curl -sS -X POST -H 'Content-Type: application/json' --data-binary @events/bodies/tcr-push.json http://127.0.0.1:8080/v1/notify"
	@echo "and read the trigger log (after stopping serve with Ctrl-C):  ./$(BIN) logs"
	@echo
	./$(BIN) serve --triggers examples/local-triggers.yaml --allow-private 127.0.0.1/32 --data ./regtrigger.db --retry-schedule 5s,30s,2m

# A local webhook target that prints what regtrigger sends.
sink: build
	./$(BIN) sink --addr 127.0.0.1:9000 --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw

test: test-deps
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

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
	rm -rf bin bench.txt regtrigger.db

# The API-compatible AWS servers the integration tests start on loopback
# (dynalite for DynamoDB, fauxqs 1.9.2 for SQS), pinned in tools/node.
test-deps:
	npm ci --prefix tools/node --no-audit --no-fund
