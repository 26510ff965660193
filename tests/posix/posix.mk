# The differential POSIX transcript (tests/posix/posix.c): run on the host and in the guest by
# the VM workload, which compares the two.
POSIX_BIN := $(BUILD)/posix/posix-transcript

$(POSIX_BIN): tests/posix/posix.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS)

.PHONY: posix-transcript
posix-transcript: $(POSIX_BIN)
