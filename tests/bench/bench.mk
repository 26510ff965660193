# make bench: vfsd and the C virtiofsd side by side through the test frontend, plus the
# syscall floor (tests/bench/bench.c; docs/benchmarks.md says how to read it).
BENCH_OPTS ?=

$(BUILD)/bench/bench: tests/bench/bench.c $(FE_LIB_OBJS) $(BUILD)/libvfsd.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -Itests/frontend -o $@ $< $(FE_LIB_OBJS) $(BUILD)/libvfsd.a $(ALL_LDFLAGS)

.PHONY: bench
bench: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/bench
	@$(BUILD)/bench/bench --vfsd $(BUILD)/vfsd --json $(BUILD)/bench/results.json $(BENCH_OPTS)
