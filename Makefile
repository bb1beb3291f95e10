# Ember: build, guest artifacts, tests, demo.  `make help` lists the targets.
SHELL := /bin/bash
CC ?= gcc
BUILD ?= build
SAN ?=
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
               -g -MMD -MP -pthread -I.
ifeq ($(SAN),1)
  CFLAGS_OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDFLAGS_SAN := -fsanitize=address,undefined
else
  CFLAGS_OPT := -O2
  LDFLAGS_SAN :=
endif
CFLAGS := $(CFLAGS_BASE) $(CFLAGS_OPT) $(EXTRA_CFLAGS)
EMBER_CACHE ?= $(HOME)/.cache/ember
# ember links glibc dynamically and everything else from archives: a static-pie
# ember was measured at 1.3 MiB of private PSS against 0.7 MiB for this (glibc's
# pages are shared with every other process on the host), for ~0.05 ms more exec.
# Linking the libraries from their archives means fewer objects for ld.so to load
# and relocate (Debian's -dev packages ship PIC archives).
# liblz4, zlib, liblzma, libzstd: bzImage payloads Ember decompresses itself (x86/decompress.c).
comma := ,
COMPRESS_LIBS := -llz4 -lz -llzma -lzstd
LDLIBS := -Wl,-Bstatic -ljansson -luring -lseccomp -lcap-ng $(COMPRESS_LIBS) -Wl,-Bdynamic -pthread

# Debian packages the build, the guest artifacts and the tests need.
DEB_PACKAGES := build-essential pkg-config libseccomp-dev libcap-ng-dev libjansson-dev \
  libcriterion-dev liburing-dev liblz4-dev zlib1g-dev liblzma-dev libzstd-dev linux-source-6.1 flex bison libelf-dev \
  libssl-dev bc busybox-static e2fsprogs cpio xz-utils lz4 qemu-system-x86 curl iproute2 \
  dnsmasq-base iputils-ping util-linux bsdutils python3 clang-format clang-tidy cppcheck clang libfuzzer-14-dev

# The layers, lowest first (docs/architecture.md); an include never points to a later one.
LAYERS := core devices devices/mmds devices/virtio interp x86 vm api jailer cmd
LIB_SRCS := $(filter-out cmd/main.c jailer/main.c,$(foreach d,$(LAYERS),$(wildcard $(d)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o)
# Host tools shipped with Ember (docs/snapshot-tools.md): libc and jansson only, not libember.
SNAPSHOT_TOOLS := $(BUILD)/ember-uffd-handler $(BUILD)/ember-snapshot-merge
UFFD_HANDLER_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,tools/snapshot/uffd_handler.c tools/snapshot/uffd_serve.c \
                       core/uffd_msg.c core/errmsg.c)

.PHONY: all deps guest kvmhost demo test unit integration asan asan-test clean help format format-check lint
all: $(BUILD)/ember $(BUILD)/ember-static $(BUILD)/ember-jailer $(BUILD)/virtio-bench $(BUILD)/test-guest.elf $(BUILD)/test-guest-pvh.elf \
     $(SNAPSHOT_TOOLS)

help:
	@echo "make [all]   build build/ember, build/ember-jailer, the snapshot tools, build/virtio-bench and the tiny test guests"
	@echo "make deps    install the Debian packages Ember needs (apt-get, as root)"
	@echo "make guest   build (or reuse from ~/.cache/ember) the Linux guest kernel and root fs"
	@echo "make kvmhost build (or reuse) the emulated KVM host used where /dev/kvm is absent (docs/testing.md)"
	@echo "make test-guests  build only the tiny test guests (build/test-guest.elf, build/test-guest-pvh.elf)"
	@echo "make build/unit-tests  build only the unit tests (run: build/unit-tests)"
	@echo "make unit    unit tests, plain and under ASan+UBSan"
	@echo "make integration  integration tests (EMBER_KVM=auto|host|emulated, ONLY=name)"
	@echo "make demo    deps + build + guest, then boot the guest with its console on this terminal"
	@echo "make test    deps + build + guest, then unit tests (plain and ASan+UBSan) and integration tests"
	@echo "make bench   Ember vs QEMU benchmarks (< 25 min; QUICK=1: < 5 min), perf/README.md"
	@echo "make asan    build the sanitizer variant into build/asan"
	@echo "make fuzz    build the libFuzzer fuzzers (clang) and run each for FUZZ_SECONDS (default 60), tests/fuzz/"
	@echo "make churn   VM life cycles one after another and K at a time, nothing left (N=20 K=4 ROUNDS=2 GUEST=linux|tiny)"
	@echo "make format  rewrite the C sources in the project's style (.clang-format)"
	@echo "make format-check  list the C sources that make format would change (exit 1 if any)"
	@echo "make lint    include-direction rule, cppcheck and clang-tidy (.clang-tidy) over the C sources"
	@echo "make clean   remove build/"
	@echo "make help    this list"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libember.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ember: $(BUILD)/obj/cmd/main.o $(BUILD)/libember.a
	$(CC) $(LDFLAGS_SAN) -o $@ $^ $(LDLIBS)

# A static-pie ember for jailers that copy only the binary into their jail (firecracker-containerd's runc
# jailer): no ld.so, no libraries. ember-jailer copies the libraries, so it takes build/ember.
$(BUILD)/ember-static: $(BUILD)/obj/cmd/main.o $(BUILD)/libember.a
	$(CC) $(LDFLAGS_SAN) -static-pie -o $@ $^ $(subst -Wl$(comma)-Bstatic,,$(subst -Wl$(comma)-Bdynamic,,$(LDLIBS)))

$(BUILD)/ember-jailer: $(BUILD)/obj/jailer/main.o $(BUILD)/libember.a
	$(CC) $(LDFLAGS_SAN) -o $@ $^ $(LDLIBS)

BENCH_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard perf/virtio_bench*.c))
$(BUILD)/virtio-bench: $(BENCH_OBJS) $(BUILD)/libember.a
	$(CC) $(LDFLAGS_SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/ember-uffd-handler: $(UFFD_HANDLER_OBJS)
	$(CC) $(LDFLAGS_SAN) -o $@ $^ -Wl,-Bstatic -ljansson -Wl,-Bdynamic

$(BUILD)/ember-snapshot-merge: $(BUILD)/obj/tools/snapshot/mem_merge.o $(BUILD)/obj/core/errmsg.o
	$(CC) $(LDFLAGS_SAN) -o $@ $^

# The unit tests run the snapshot tools of their own build (tests/unit/tool_fixture.c).
$(BUILD)/obj/tests/unit/tool_fixture.o: CFLAGS += -DEMBER_TOOLS_DIR='"$(abspath $(BUILD))"'
$(BUILD)/unit-tests: $(UNIT_OBJS) $(BUILD)/libember.a | $(SNAPSHOT_TOOLS)
	$(CC) $(LDFLAGS_SAN) -o $@ $^ -lcriterion $(LDLIBS)

include tests/guest/guest.mk
include perf/bench.mk
include tests/fuzz/fuzz.mk

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

guest: deps
	deploy/guest/build.sh $(BUILD)/guest

kvmhost: deps
	EMBER_CACHE=$(EMBER_CACHE) tests/kvmhost/build.sh

asan:
	$(MAKE) BUILD=$(BUILD)/asan SAN=1 $(BUILD)/asan/ember $(BUILD)/asan/ember-jailer $(BUILD)/asan/unit-tests

unit: $(BUILD)/unit-tests asan
	$(BUILD)/unit-tests
	@# Criterion does not fail a test on a LeakSanitizer report: look for one.
	ASAN_OPTIONS=detect_leaks=1 $(BUILD)/asan/unit-tests 2>&1 | tee $(BUILD)/asan/unit-tests.log; \
	  test $${PIPESTATUS[0]} -eq 0 && ! grep -q "ERROR: LeakSanitizer" $(BUILD)/asan/unit-tests.log

integration: all asan
	EMBER=$(BUILD)/ember EMBER_ASAN=$(BUILD)/asan/ember JAILER=$(BUILD)/ember-jailer \
	  GUEST_DIR=$(BUILD)/guest BUILD=$(BUILD) \
	  tests/integration/run.sh

# Not part of make test: minutes of VM life cycles (perf/churn.sh says what it measures).
.PHONY: churn
churn: all guest
	EMBER=$(BUILD)/ember GUEST_DIR=$(BUILD)/guest TEST_GUEST=$(BUILD)/test-guest.elf perf/churn.sh

# Builds run one job per core; the tests themselves are run one target at a time.
JOBS ?= $(shell nproc)
test: deps
	$(MAKE) -j$(JOBS) all
	$(MAKE) guest
	$(MAKE) -j$(JOBS) $(BUILD)/unit-tests asan
	$(MAKE) unit
	$(MAKE) integration

demo: deps
	$(MAKE) -j$(JOBS) all
	$(MAKE) guest
	deploy/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

# The C sources `make format` and `make lint` cover: the layers, their unit tests and the
# benchmark tools. tests/guest/ is freestanding guest code in kernel style (tabs) with its own
# flags: left out of both.
CHECK_DIRS := $(LAYERS) perf perf/lib tests/lib tests/unit tests/jail tools/snapshot tests/fuzz
CHECK_SRCS := $(foreach d,$(CHECK_DIRS),$(wildcard $(d)/*.c))
FORMAT_SRCS := $(foreach d,$(CHECK_DIRS),$(wildcard $(d)/*.c $(d)/*.h))
# clang-tidy and cppcheck see what the compiler sees: the build's -std, -D and -I flags.
LINT_CFLAGS := $(filter -std=% -D% -U% -I%,$(CFLAGS)) -pthread -Wall -Wextra -Wshadow -Wno-missing-field-initializers

format:
	clang-format -i $(FORMAT_SRCS)

format-check:
	@bad=0; for f in $(FORMAT_SRCS); do \
	  n=$$(clang-format "$$f" | diff "$$f" - | grep -c '^<'); \
	  [ "$$n" -eq 0 ] || { echo "$$f: $$n line(s) differ from .clang-format (make format)"; bad=1; }; \
	done; \
	[ $$bad -eq 0 ] && echo "format: every C source matches .clang-format"; exit $$bad

lint:
	JOBS=$(JOBS) LINT_OUT=$(BUILD)/lint tools/lint.sh $(LINT_CFLAGS) -- $(CHECK_SRCS)

-include $(LIB_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(BUILD)/obj/cmd/main.d $(BUILD)/obj/jailer/main.d \
  $(UFFD_HANDLER_OBJS:.o=.d) $(BUILD)/obj/tools/snapshot/mem_merge.d $(BENCH_OBJS:.o=.d)
