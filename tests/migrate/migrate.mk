# tests/migrate: moving a sandbox's daemon by the control socket (ctl.sh) and its driver.

frontend-tests: $(BUILD)/frontend/move-drive

$(BUILD)/frontend/move-drive: tests/migrate/move-drive.c $(FE_LIB_OBJS) $(BUILD)/libvfsd.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -I$(FE_DIR) -o $@ $< $(FE_LIB_OBJS) $(BUILD)/libvfsd.a $(ALL_LDFLAGS)
