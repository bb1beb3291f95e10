# Ember test guest: a make fragment. The top Makefile includes it; it also
# works alone: make -f tests/guest/guest.mk build/test-guest.elf
# Paths are relative to the repository root (run make from there).

GUEST_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
# Follows the includer's BUILD (default build/): $(GUEST_OUT)/test-guest.elf.
GUEST_OUT := $(or $(BUILD),build)
GUEST_OBJDIR := $(GUEST_OUT)/guest-obj
GUEST_CC ?= gcc

# Keep whatever default goal the including Makefile has (restored below).
guest_saved_default_goal := $(.DEFAULT_GOAL)

# Freestanding, non-PIC, linked at 2 MiB (so -mcmodel=small addresses
# fit), no red zone (exception frames land on the stack), no SSE/x87 code
# from the compiler (CR4.OSFXSR is off), no POPCNT from the compiler (only
# the popcnt test may use it), no endbr64 (kvm-pvm emulates every guest
# instruction; keep to plain ones).
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror \
	-ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	-mcmodel=small -mno-red-zone -mgeneral-regs-only -mno-popcnt \
	-fcf-protection=none -fno-asynchronous-unwind-tables \
	-fno-tree-loop-distribute-patterns \
	-MMD -MP -I$(GUEST_DIR)
GUEST_ASFLAGS := -g -Wa,--noexecstack -MMD -MP -I$(GUEST_DIR)
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none \
	-Wl,-z,max-page-size=0x1000 \
	-Wl,-T,$(GUEST_DIR)/guest.ld

GUEST_C_SRCS := main.c bootinfo.c console.c traps.c mptable.c lib.c \
	test-hello.c test-unclaimed.c test-smp.c test-triple.c \
	test-int3.c test-popcnt.c test-fwait.c \
	test-cmpxchg16b.c test-xsave.c test-rdrand.c test-smap-fsgs.c \
	test-avx512.c test-counter.c
GUEST_S_SRCS := start64.S cpu-tables.S trap-stubs.S ap-trampoline.S

# entry64.o first so _start opens .text (readability in objdump only:
# e_entry comes from ENTRY(_start) either way).
GUEST_COMMON_OBJS := $(GUEST_OBJDIR)/entry64.o \
	$(addprefix $(GUEST_OBJDIR)/,$(GUEST_S_SRCS:.S=.o) $(GUEST_C_SRCS:.c=.o))
GUEST_PVH_OBJS := $(GUEST_COMMON_OBJS) $(GUEST_OBJDIR)/pvh.o

.PHONY: test-guests
test-guests: $(GUEST_OUT)/test-guest.elf $(GUEST_OUT)/test-guest-pvh.elf

# Everything is rebuilt when this fragment (the flags) changes.
GUEST_DEPS := $(GUEST_DIR)/guest.mk

$(GUEST_OUT)/test-guest.elf: $(GUEST_COMMON_OBJS) $(GUEST_DIR)/guest.ld $(GUEST_DEPS)
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $(GUEST_COMMON_OBJS)

$(GUEST_OUT)/test-guest-pvh.elf: $(GUEST_PVH_OBJS) $(GUEST_DIR)/guest.ld $(GUEST_DEPS)
	$(GUEST_CC) $(GUEST_LDFLAGS) -o $@ $(GUEST_PVH_OBJS)

# Static pattern rules: they win over any generic %.o rule of the includer.
$(filter %.o,$(GUEST_C_SRCS:%.c=$(GUEST_OBJDIR)/%.o)): $(GUEST_OBJDIR)/%.o: $(GUEST_DIR)/%.c $(GUEST_DEPS)
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OBJDIR)/entry64.o $(GUEST_OBJDIR)/pvh.o $(GUEST_S_SRCS:%.S=$(GUEST_OBJDIR)/%.o): $(GUEST_OBJDIR)/%.o: $(GUEST_DIR)/%.S $(GUEST_DEPS)
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_ASFLAGS) -c -o $@ $<

-include $(wildcard $(GUEST_OBJDIR)/*.d)

ifeq ($(notdir $(firstword $(MAKEFILE_LIST))),guest.mk)
.DEFAULT_GOAL := test-guests
else
.DEFAULT_GOAL := $(guest_saved_default_goal)
endif
