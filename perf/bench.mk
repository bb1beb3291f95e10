# perf/bench.mk - `make bench` (full, ~20 min) and `make bench QUICK=1` (< 3 min).
# Included from the top Makefile: include perf/bench.mk
.PHONY: bench
bench: all
	@test -f $(BUILD)/guest/vmlinux || $(MAKE) guest
	QUICK=$(QUICK) BUILD=$(BUILD) perf/bench.sh
