# perf/bench.mk - `make bench` (full, < 25 min) and `make bench QUICK=1` (< 5 min).
# Without a usable /dev/kvm the benchmarks that need a VM run inside the emulated
# KVM host (tests/kvmhost, docs/testing.md); perf/README.md says which run where.
# Included from the top Makefile: include perf/bench.mk
.PHONY: bench
bench: all
	@test -f $(BUILD)/guest/vmlinux || $(MAKE) guest
	QUICK=$(QUICK) BUILD=$(BUILD) perf/bench.sh
