# Coverage-guided fuzzers (libFuzzer from clang 14, with ASan and UBSan): tests/fuzz/, docs/testing.md.
#   make fuzz [FUZZ_SECONDS=60] [FUZZERS="api http"]   build every fuzzer and run each for FUZZ_SECONDS
#   make fuzz-build                                    build them only (build/fuzz/fuzz_NAME)
# Each run starts from the seed corpus checked in (tests/fuzz/corpus/NAME/) plus what earlier runs
# found (build/fuzz/corpus/NAME/, where new inputs go); a crash leaves build/fuzz/artifacts/NAME-crash-*.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZERS ?= api config snapshot uffd_msg virtq http mmds_net kernel decompress blk net_tx vsock jailer_args
# clang-only warnings the gcc build does not enable, and libFuzzer's edge counters for every object.
FUZZ_EXTRA_CFLAGS := -fsanitize=fuzzer-no-link -Wno-gnu-variable-sized-type-not-at-end -Wno-sign-compare

.PHONY: fuzz fuzz-build
fuzz-build:
	@command -v $(FUZZ_CC) >/dev/null && \
	  ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || \
	  { echo "fuzz: needs clang and libFuzzer: apt-get install clang libfuzzer-14-dev"; exit 1; }
	$(MAKE) BUILD=$(BUILD)/fuzz CC=$(FUZZ_CC) SAN=1 EXTRA_CFLAGS="$(FUZZ_EXTRA_CFLAGS)" \
	  $(FUZZERS:%=$(BUILD)/fuzz/fuzz_%)

fuzz: fuzz-build
	@mkdir -p $(BUILD)/fuzz/artifacts; fail=0; \
	for f in $(FUZZERS); do \
	  mkdir -p $(BUILD)/fuzz/corpus/$$f; \
	  echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
	  $(BUILD)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	    -artifact_prefix=$(BUILD)/fuzz/artifacts/$$f- $(BUILD)/fuzz/corpus/$$f tests/fuzz/corpus/$$f \
	    >$(BUILD)/fuzz/$$f.log 2>&1; rc=$$?; \
	  grep -E "^stat::number_of_executed_units|cov: .* ft:" $(BUILD)/fuzz/$$f.log | tail -2 | sed "s/^/  $$f: /"; \
	  if [ $$rc -ne 0 ]; then fail=1; echo "fuzz: $$f FAILED (exit $$rc), see $(BUILD)/fuzz/$$f.log:"; \
	    grep -E "ERROR|SUMMARY|runtime error|Test unit written" $(BUILD)/fuzz/$$f.log | head -5; fi; \
	done; exit $$fail

# In the fuzz build (BUILD=build/fuzz, CC=clang): a harness and what it uses of libember.
$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/libember.a
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)
# The harnesses' dependency files (in the sub-make, where BUILD is build/fuzz): a change to a header such as
# fuzz_virtio.h rebuilds the fuzzers that include it.
-include $(wildcard $(BUILD)/obj/tests/fuzz/fuzz_*.d)
