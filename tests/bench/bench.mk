# make bench: vfsd, the C virtiofsd and the Rust virtiofsd side by side through the test frontend, plus the
# syscall floor (tests/bench/bench.c; docs/benchmarks.md says how to read it), then
# bench-density, bench-fdcache, bench-fdcache-guest and bench-guest.
BENCH_OPTS ?=

# make bench-density: what one supervised child costs in memory and how fast the supervisor
# spawns and stops 1, 10 and 100 of them (tests/bench/density.py; docs/benchmarks.md,
# "Supervisor density"). Root, no VM; DENSITY_OPTS="--counts 1,10,200 --repeat 10" varies it.
DENSITY_OPTS ?=
DENSITY_RUN = /usr/bin/python3 tests/bench/density.py --vfsd $(BUILD)/vfsd \
	--json $(BUILD)/bench/density.json $(DENSITY_OPTS)

# make bench-guest: a TCG guest runs fio and a metadata loop on shares served by vfsd, vfsd
# with GUEST_BENCH_VFSD2_OPTS (default: polling off), the C and the Rust virtiofsd, each in
# turn, the order rotating each round; medians and ratios (tests/bench/guest.sh;
# docs/benchmarks.md, "In a guest"). Root; about 13 minutes. GUEST_BENCH_VFSD_OPTS adds options to both vfsd
# columns (A/B a flag); GUEST_BENCH_OPTS="--rounds 5 --runtime 10 --vfsd2 OTHER/vfsd" varies
# the run (tests/bench/guest.sh --help).
GUEST_BENCH_OPTS ?=
GUEST_BENCH_VFSD_OPTS ?=
GUEST_BENCH_VFSD2_OPTS ?= --queue-poll-us=0
GUEST_BENCH_RUN = tests/bench/guest.sh --vfsd $(BUILD)/vfsd --json $(BUILD)/bench/guest.json \
	--work $(BUILD)/bench/guest --vfsd-opts '$(GUEST_BENCH_VFSD_OPTS)' \
	--vfsd2-opts '$(GUEST_BENCH_VFSD2_OPTS)' $(GUEST_BENCH_OPTS)

$(BUILD)/bench/bench: tests/bench/bench.c $(FE_LIB_OBJS) $(BUILD)/libvfsd.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -Itests/frontend -o $@ $< $(FE_LIB_OBJS) $(BUILD)/libvfsd.a $(ALL_LDFLAGS)

.PHONY: bench bench-density bench-guest
# The Rust virtiofsd's column when scripts/rust-virtiofsd.sh can build it (Cargo's registry).
bench: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/bench
	@rust=$$(scripts/rust-virtiofsd.sh) || echo "bench: no Rust virtiofsd column (see above)" >&2; \
	$(BUILD)/bench/bench --vfsd $(BUILD)/vfsd $${rust:+--rust $$rust} \
		--json $(BUILD)/bench/results.json $(BENCH_OPTS)
	@$(DENSITY_RUN)
	@$(MAKE) --no-print-directory bench-fdcache
	@$(FDCACHE_GUEST_RUN)
	@$(GUEST_BENCH_RUN)

bench-density: deps
	@$(MAKE) --no-print-directory all
	@$(DENSITY_RUN)

bench-guest: deps
	@$(MAKE) --no-print-directory all
	@$(GUEST_BENCH_RUN)

# make bench-fdcache: the fd cache (docs/fd-cache.md) against both references: a million
# files looked up and kept with --rlimit-nofile=4096, the lookups that fail and the daemon's
# memory per inode (tests/bench/fdcache.sh; FDCACHE_OPTS="--files 200000" makes it smaller).
FDCACHE_OPTS ?=
$(BUILD)/bench/lookups: tests/bench/lookups.c $(FE_LIB_OBJS) $(BUILD)/libvfsd.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -Itests/frontend -o $@ $< $(FE_LIB_OBJS) $(BUILD)/libvfsd.a $(ALL_LDFLAGS)

.PHONY: bench-fdcache
bench-fdcache: deps
	@$(MAKE) --no-print-directory all $(BUILD)/bench/lookups
	@tests/bench/fdcache.sh --vfsd $(BUILD)/vfsd --lookups $(BUILD)/bench/lookups $(FDCACHE_OPTS)

# make bench-fdcache-guest: the same in a TCG guest, issue 15's goal as it states it: `find`
# with a stat of each of 2 million files on a share whose daemon has --rlimit-nofile=4096,
# vfsd as root and rootless (unshare -r --map-auto), the C virtiofsd for comparison; errors,
# fds and memory per inode the guest kept (tests/bench/fdcache-guest.sh; about 25 minutes;
# FDCACHE_GUEST_OPTS="--files 200000" makes it smaller).
FDCACHE_GUEST_OPTS ?=
FDCACHE_GUEST_RUN = tests/bench/fdcache-guest.sh --vfsd $(BUILD)/vfsd --references $(FDCACHE_GUEST_OPTS)

.PHONY: bench-fdcache-guest
bench-fdcache-guest: deps
	@$(MAKE) --no-print-directory all
	@$(FDCACHE_GUEST_RUN)
