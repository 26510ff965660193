# libFuzzer targets (tests/fuzz/README.md). Built with clang into $(BUILD)/fuzz/, from their own
# objects of lib/ (instrumented for coverage, ASan and UBSan), never from the gcc ones.
#   make fuzz-build                 builds every target
#   make fuzz [FUZZ_SECONDS=60]     runs each target in turn on a copy of its seed corpus

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_TARGETS := fuzz_fuse fuzz_vhost fuzz_virtq fuzz_ctl fuzz_hook fuzz_metrics fuzz_migrate
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# json-c for lib/ctl/proto.c, lib/hook/oci.c and their targets; asked only when building, as
# in the Makefile.
FUZZ_JSON_CFLAGS = $(shell pkg-config --cflags json-c 2>/dev/null)
FUZZ_JSON_LIBS = $(shell pkg-config --libs json-c 2>/dev/null)
FUZZ_CFLAGS = -O1 -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral \
	-fno-strict-aliasing -D_GNU_SOURCE -DVFSD_VERSION='"$(VERSION)"' -pthread -Ilib \
	$(FUZZ_JSON_CFLAGS)
# lib/fuse/ops.c names opcodes with `#code + 5`, which clang (not gcc) warns about.
FUZZ_LIB_CFLAGS = $(FUZZ_CFLAGS) -Wno-string-plus-int -fsanitize=fuzzer-no-link $(FUZZ_SAN)
# lib/sec is left out: the targets do not sandbox, and it needs libseccomp and libcap-ng. Of
# lib/ctl only the wire format: the rest is the supervisor. Of lib/hook only the parsing of
# the hook's input: hook.c talks to the supervisor. Of lib/metrics the region and the text
# (lib/fuse and lib/fs count into the region); not push.c, which needs libcurl. Of lib/migrate
# the model and its two codecs: collect.c and apply.c work on a running filesystem.
FUZZ_LIB_SRCS := $(sort $(wildcard lib/base/*.c lib/fs/*.c lib/fuse/*.c lib/vhost/*.c) \
	lib/ctl/proto.c lib/hook/oci.c lib/metrics/registry.c lib/metrics/expo.c \
	lib/migrate/state.c lib/migrate/codec.c lib/migrate/native.c lib/migrate/postcard.c)
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)

# libFuzzer flags for every run, and per target.
FUZZ_RUN_FLAGS := -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 -use_value_profile=1
FUZZ_FLAGS_fuzz_fuse := -max_len=16384
FUZZ_FLAGS_fuzz_vhost := -max_len=8192
FUZZ_FLAGS_fuzz_virtq := -max_len=8192
# a request line may have 65536 bytes: a little more, for the too-long ones
FUZZ_FLAGS_fuzz_ctl := -max_len=70000
# a state and a config.json: room for real ones (the size limits are the unit tests')
FUZZ_FLAGS_fuzz_hook := -max_len=32768
# a control byte and a whole metrics region (274432 bytes), and some more
FUZZ_FLAGS_fuzz_metrics := -max_len=300000
# a control byte and a state stream: thousands of inodes, names up to the 4096-byte limit
FUZZ_FLAGS_fuzz_migrate := -max_len=65536

.PHONY: fuzz-build fuzz fuzz-check-cc

fuzz-check-cc:
	@command -v $(FUZZ_CC) >/dev/null || \
		{ echo "fuzz: $(FUZZ_CC) not found (apt-get install -y clang)"; exit 1; }

fuzz-build: fuzz-check-cc $(FUZZ_BINS)

$(FUZZ_LIB_OBJS): $(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZ-CC $<"
	@$(FUZZ_CC) $(FUZZ_LIB_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/libvfsd-fuzz.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	@ar rcs $@ $^

# guard_mem.c puts inaccessible zones around guest memory mappings (see there).
FUZZ_GUARD_LDFLAGS := -Wl,--wrap=mmap -Wl,--wrap=munmap

$(FUZZ_BINS): $(FUZZ_DIR)/%: tests/fuzz/%.c tests/fuzz/guard_mem.c $(FUZZ_DIR)/libvfsd-fuzz.a
	@mkdir -p $(dir $@)
	@echo "  FUZZ-LD $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) -Itests/fuzz -MMD -MP -MF $@.d \
		-o $@ $< tests/fuzz/guard_mem.c $(FUZZ_DIR)/libvfsd-fuzz.a $(FUZZ_GUARD_LDFLAGS) \
		$(FUZZ_JSON_LIBS)

# One target at a time, one process each (the machine has two cores). New inputs go to
# corpus-work/, the committed seeds are only read; a crash, leak or timeout fails the run.
define fuzz_run
	@mkdir -p $(FUZZ_DIR)/corpus-work/$(1) $(FUZZ_DIR)/artifacts $(FUZZ_DIR)/logs
	@cp tests/fuzz/corpus/$(1)/* $(FUZZ_DIR)/corpus-work/$(1)/
	@echo "  FUZZ    $(1) for $(FUZZ_SECONDS)s (log: $(FUZZ_DIR)/logs/$(1).log)"
	@if $(FUZZ_DIR)/$(1) $(FUZZ_RUN_FLAGS) $(FUZZ_FLAGS_$(1)) -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)- $(FUZZ_DIR)/corpus-work/$(1) \
		>$(FUZZ_DIR)/logs/$(1).log 2>&1; then \
		grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed|average_exec)' \
			$(FUZZ_DIR)/logs/$(1).log | sed 's/^/          /'; \
	else \
		tail -n 60 $(FUZZ_DIR)/logs/$(1).log; \
		echo "fuzz: $(1) failed; the input is in $(FUZZ_DIR)/artifacts/"; exit 1; \
	fi

endef

fuzz: fuzz-build
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t)))

-include $(shell find $(FUZZ_DIR) -name '*.d' 2>/dev/null)

# Every committed seed and regression input, once through each target (seconds): make check
# runs it so that a fixed crash stays fixed.
.PHONY: fuzz-replay
fuzz-replay: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
		$(FUZZ_DIR)/$$t -runs=0 tests/fuzz/corpus/$$t/* >$(FUZZ_DIR)/$$t.replay.log 2>&1 || \
			{ tail -n 40 $(FUZZ_DIR)/$$t.replay.log; echo "FAIL fuzz-replay $$t"; exit 1; }; \
		echo "PASS fuzz-replay $$t ($$(ls tests/fuzz/corpus/$$t | wc -l) inputs)"; \
	done
