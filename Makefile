# vfsd — top-level build. `make` builds build/vfsd; `make check` runs every test;
# `make demo` boots a VM whose files are served by vfsd.

VERSION := 0.1.0
CC ?= cc
BUILD ?= build
PKGS := libseccomp libcap-ng json-c libcurl

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
	  -fno-strict-aliasing -D_GNU_SOURCE -DVFSD_VERSION='"$(VERSION)"' -pthread -Ilib
LDFLAGS += -pthread

# pkg-config is asked only when building, so `make deps` works on a bare machine.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

LIB_SRCS := $(sort $(wildcard lib/*/*.c))
VFSD_SRCS := $(sort $(wildcard cmd/vfsd/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))

LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
VFSD_OBJS := $(VFSD_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps check check-unit check-vm demo clean format lint asan

all: $(BUILD)/vfsd

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libvfsd.a: $(LIB_OBJS)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/vfsd: $(VFSD_OBJS) $(BUILD)/libvfsd.a
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libvfsd.a
	@mkdir -p $(dir $@)
	@echo "  TEST-CC $<"
	@$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libvfsd.a $(LDFLAGS) -lcmocka

# Installs the Debian packages the build and the tests need (idempotent).
deps:
	@scripts/install-deps.sh

check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BINS)
	@tests/run-all.sh

check-unit: deps
	@$(MAKE) --no-print-directory $(UNIT_BINS)
	@tests/run-all.sh --unit-only

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/vm/demo.sh

# Everything built and unit-tested again with AddressSanitizer and UBSan.
asan:
	@$(MAKE) --no-print-directory BUILD=build/asan \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" all $(patsubst $(BUILD)/%,build/asan/%,$(UNIT_BINS))

format:
	clang-format -i $(LIB_SRCS) $(VFSD_SRCS) $(UNIT_SRCS) $(wildcard lib/*/*.h cmd/*/*.h)

# Calls that are easy to misuse on input the peer controls.
lint:
	@! grep -nE '\b(sprintf|strcpy|strcat|gets)\s*\(|\bassert\s*\(' $(LIB_SRCS) $(VFSD_SRCS) \
		|| { echo "lint: use snprintf/memcpy and return errors instead of assert"; exit 1; }

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
