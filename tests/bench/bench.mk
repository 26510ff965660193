# make bench: vfsd, the C virtiofsd and the Rust virtiofsd side by side through the test frontend, plus the
# syscall floor (tests/bench/bench.c; docs/benchmarks.md says how to read it), then
# bench-density.
BENCH_OPTS ?=

# make bench-density: what one supervised child costs in memory and how fast the supervisor
# spawns and stops 1, 10 and 100 of them (tests/bench/density.py; docs/benchmarks.md,
# "Supervisor density"). Root, no VM; DENSITY_OPTS="--counts 1,10,200 --repeat 10" varies it.
DENSITY_OPTS ?=
DENSITY_RUN = /usr/bin/python3 tests/bench/density.py --vfsd $(BUILD)/vfsd \
	--json $(BUILD)/bench/density.json $(DENSITY_OPTS)

$(BUILD)/bench/bench: tests/bench/bench.c $(FE_LIB_OBJS) $(BUILD)/libvfsd.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -Itests/frontend -o $@ $< $(FE_LIB_OBJS) $(BUILD)/libvfsd.a $(ALL_LDFLAGS)

.PHONY: bench bench-density
# The Rust virtiofsd's column when scripts/rust-virtiofsd.sh can build it (Cargo's registry).
bench: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/bench
	@rust=$$(scripts/rust-virtiofsd.sh) || echo "bench: no Rust virtiofsd column (see above)" >&2; \
	$(BUILD)/bench/bench --vfsd $(BUILD)/vfsd $${rust:+--rust $$rust} \
		--json $(BUILD)/bench/results.json $(BENCH_OPTS)
	@$(DENSITY_RUN)

bench-density: deps
	@$(MAKE) --no-print-directory all
	@$(DENSITY_RUN)
