# qkdnet top-level Makefile. See README.md.
#   make run    install what is missing, build, run `qkd sim` on the default link
#   make test   install, build, run every test (unit, sanitizer, CLI), print a summary
#   make bench  build and run the benchmarks
#   make soak   three node links at once for SOAK_MINUTES (default 30); not in `make test`
#   make deps   apt-get install the Debian packages the build needs

BUILD   ?= build
CC      ?= cc
# The release build targets x86-64-v3 (AVX2, BMI2, POPCNT) when the CPU has it;
# wider kernels (AVX-512, VPCLMULQDQ) are chosen at run time, so valgrind, whose
# CPU lacks them, runs the portable paths.
ARCH    ?= $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw bmi2 /proc/cpuinfo && echo -march=x86-64-v3)
OPT     ?= -O2 -g
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Werror
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(ARCH) $(WARN) -Iinclude -MMD -MP $(EXTRA_CFLAGS)
LDLIBS   = -lsqlite3 -lconfig -lmicrohttpd -lgnutls -lcurl -lsodium -lcrypto -ljansson -levent -lm -lpthread $(EXTRA_LDLIBS)
TESTLIBS = -lcmocka

DEB_PACKAGES = gcc make pkg-config libcmocka-dev libjansson-dev libsodium-dev \
               libsqlite3-dev libconfig-dev libmicrohttpd-dev libgnutls28-dev libssl-dev \
               libcurl4-gnutls-dev python3 \
               jq gnuplot-nox graphviz valgrind clang libclang-rt-14-dev curl openssl iproute2 iputils-ping procps prometheus \
               libevent-dev strongswan-swanctl charon-systemd libcharon-extra-plugins iperf3 tshark util-linux \
               python3-cryptography

LIB_SRCS  := $(sort $(shell find lib -name '*.c'))
APP_SRCS  := $(sort $(wildcard src/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
APP_OBJS  := $(APP_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(sort $(wildcard bench/*.c))
TOOL_BINS := $(TOOL_SRCS:bench/%.c=$(BUILD)/bench/%)
TEST_TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# Seconds each fuzz target runs inside `make test`; `make fuzz` runs longer.
FUZZ_SECONDS ?= 3
FUZZ_LONG_SECONDS ?= 300

.PHONY: all build deps run test unit asan fuzz-build fuzz cli bench soak valgrind clean

all: build
build: $(BUILD)/headers.ok $(BUILD)/qkd $(UNIT_BINS) $(TOOL_BINS) $(TEST_TOOL_BINS)

# The public headers expose no thread types: the node object and its links
# are opaque (qkd/node.h), their locks private to lib/. A header that
# includes pthread.h or stdatomic.h, or names a pthread or atomic type,
# fails the build here.
PUBLIC_HEADERS := $(wildcard include/qkd/*.h)
$(BUILD)/headers.ok: $(PUBLIC_HEADERS)
	@if grep -nE '<(pthread|stdatomic)\.h>|\bpthread_[a-z]+_t\b|_Atomic|\batomic_[a-z]+\b' $^; then \
	  echo "include/qkd: thread types in a public header (docs/node.md)" >&2; exit 1; fi
	@mkdir -p $(dir $@) && touch $@

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libqkd.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/qkd: $(APP_OBJS) $(BUILD)/libqkd.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libqkd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqkd.a $(TESTLIBS) $(LDLIBS)

# Helpers of the CLI tests (tests/tools/), e.g. build/tests/tools/mkstore.
$(BUILD)/tests/tools/%: tests/tools/%.c $(BUILD)/libqkd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqkd.a $(LDLIBS)

# Stand-alone evaluation tools (bench/), e.g. build/bench/ec_eval.
$(BUILD)/bench/%: bench/%.c $(BUILD)/libqkd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqkd.a $(LDLIBS)

# libFuzzer targets: clang, with the library built for coverage and ASan+UBSan.
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libqkd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(BUILD)/libqkd.a $(LDLIBS)

fuzz-build: deps
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang OPT="-O1 -g" \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" fuzz-bins

fuzz-bins: $(FUZZ_BINS)

fuzz: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_LONG_SECONDS) tests/run.sh fuzz

run: deps
	@$(MAKE) --no-print-directory build
	$(BUILD)/qkd sim

# The sanitizer build lives in build/asan and runs the same unit tests.
asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" build

test: deps
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run.sh

valgrind: deps
	@$(MAKE) --no-print-directory build
	@QKD_VALGRIND=1 tests/run.sh unit

# bench/kme.sh: the key manager's figures (kme_fake, then two `qkd node`s).
# bench/auth.sh: authentication key per round, batches against a tag per message.
# bench/node_cpu.sh: a node's CPU per round beside qkd sim's (and fiber_bench).
# bench/relay.sh: relayed enc_keys latency over 1, 2, 4 hops, throughput, reroutes.
# bench/netsim.sh: qkd netsim at 100 and 1000 nodes (docs/netsim.md "Figures";
# the 1000-node run takes about 3 min and 8.4 GB of memory).
# build/bench/esp_bench: ESP encapsulate+decapsulate on one core, 1400-byte
# packets, AES-256-GCM: the crypto ceiling of `qkd vpn` (docs/vpn.md).
# bench/vpn_swan.sh: iperf3 TCP through two strongSwan kernel-libipsec gateways
# in network namespaces, each charon on one core: the figure `qkd vpn` must
# beat (docs/vpn.md "Interoperability with strongSwan"; needs root).
# bench/vpn_tun.sh: iperf3 through two ESP test gateways (tests/tools/esp_gw) in
# network namespaces, ESP AES-256-GCM against the no-crypto mode, and through
# two `qkd vpn` daemons (root only).
# bench/vpn_rekey.sh: the rekey latency (key manager included) and the QKD key
# a tunnel uses per hour, from tests/integration/vpn_qkd.sh (root only).
# Only bench/*.c are built as tools (TOOL_SRCS); the scripts are run as is.
bench: deps
	@$(MAKE) --no-print-directory build
	$(BUILD)/qkd bench
	bench/kme.sh $(BUILD)
	bench/auth.sh $(BUILD)
	bench/node_cpu.sh $(BUILD)
	bench/relay.sh $(BUILD)
	bench/netsim.sh $(BUILD)
	$(BUILD)/bench/esp_bench
	bench/vpn_swan.sh $(BUILD)
	bench/vpn_tun.sh $(BUILD)
	bench/vpn_rekey.sh $(BUILD)

# tests/soak/soak.sh: three links, each a pair of `qkd node`s, at once for
# SOAK_MINUTES (default 30); SOAK_FAULTS=1 adds kill -9 and restarts, KEEP=1
# keeps the CSVs and logs (docs/performance.md, "Soak").
soak: deps
	@$(MAKE) --no-print-directory build
	QKD=$(BUILD)/qkd tests/soak/soak.sh

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
