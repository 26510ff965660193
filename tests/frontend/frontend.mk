# The vhost-user test frontend (tests/frontend/): a library that plays the VMM and the guest
# driver, and the suites built on it. `make frontend-tests` builds them into
# $(BUILD)/frontend/; tests/frontend/run.sh [DAEMON] runs them.

FE_DIR := tests/frontend
FE_LIB_SRCS := $(FE_DIR)/frontend.c $(FE_DIR)/migrate.c $(FE_DIR)/vring.c $(FE_DIR)/fuse_client.c $(FE_DIR)/harness.c
FE_TEST_SRCS := $(sort $(wildcard $(FE_DIR)/test_*.c))
FE_LIB_OBJS := $(FE_LIB_SRCS:%.c=$(BUILD)/obj/%.o)
FE_TEST_OBJS := $(FE_TEST_SRCS:%.c=$(BUILD)/obj/%.o)
FE_BINS := $(FE_TEST_SRCS:$(FE_DIR)/%.c=$(BUILD)/frontend/%)
# The FUSE opcode suite is one binary from several sources: its cases by concern.
FE_FUSE_OPS_SRCS := $(sort $(wildcard $(FE_DIR)/fuse_ops/*.c))
FE_FUSE_OPS_OBJS := $(FE_FUSE_OPS_SRCS:%.c=$(BUILD)/obj/%.o)

# Keep the objects: make would otherwise delete them as intermediates of the pattern rule.
.SECONDARY: $(FE_LIB_OBJS) $(FE_TEST_OBJS) $(FE_FUSE_OPS_OBJS)

.PHONY: frontend-tests
frontend-tests: $(FE_BINS) $(BUILD)/frontend/metrics-drive

# A known amount of work through one daemon, for tests/metrics/run.sh.
$(BUILD)/frontend/metrics-drive: tests/metrics/drive.c $(FE_LIB_OBJS) $(BUILD)/libvfsd.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -I$(FE_DIR) -o $@ $< $(FE_LIB_OBJS) $(BUILD)/libvfsd.a $(ALL_LDFLAGS)

# libvfsd.a only lends the vhost-user request names to error messages.
$(BUILD)/frontend/%: $(BUILD)/obj/$(FE_DIR)/%.o $(FE_LIB_OBJS) $(BUILD)/libvfsd.a
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(ALL_LDFLAGS) -o $@ $^

$(BUILD)/frontend/test_fuse_ops: $(FE_FUSE_OPS_OBJS)
