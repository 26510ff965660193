/* The FUSE opcode suite, in parts by concern (the files beside this one); test_fuse_ops.c
 * holds its table of cases. */
#ifndef VFSD_TESTS_FUSE_OPS_H
#define VFSD_TESTS_FUSE_OPS_H

#include <stdint.h>
#include <sys/stat.h>

#include "../harness.h"

/* A node id no daemon hands out: a live slot's generation never gets this high. */
#define STALE_ID 0x00007fff000000abull

/* common.c */
struct fc *session(struct t_ctx *t);
void host_stat(struct t_ctx *t, const char *rel, struct stat *st);
/* The attributes the daemon sent match the host's own. */
void check_attr(struct t_ctx *t, const struct fuse_attr *a, const char *rel);
uint64_t lookup_id(struct t_ctx *t, struct fc *c, uint64_t parent, const char *name);
void open_file(struct t_ctx *t, struct fc *c, const char *name, uint32_t flags,
	       uint64_t *nodeid, uint64_t *fh);

/* The cases, by part. */
/* session.c */
void test_init(struct t_ctx *t);
void test_destroy(struct t_ctx *t);
void test_interrupt(struct t_ctx *t);
void test_enosys(struct t_ctx *t);
/* entries.c */
void test_lookup(struct t_ctx *t);
void test_getattr(struct t_ctx *t);
void test_forget(struct t_ctx *t);
void test_batch_forget(struct t_ctx *t);
void test_setattr(struct t_ctx *t);
void test_mkdir(struct t_ctx *t);
void test_mknod(struct t_ctx *t);
void test_create(struct t_ctx *t);
void test_tmpfile(struct t_ctx *t);
void test_create_as_guest_user(struct t_ctx *t);
void test_unlink_rmdir(struct t_ctx *t);
void test_rename(struct t_ctx *t);
void test_link(struct t_ctx *t);
void test_symlink_readlink(struct t_ctx *t);
/* files.c */
void test_open_read(struct t_ctx *t);
void test_handle_of_other_file(struct t_ctx *t);
void test_open_deleted_on_host(struct t_ctx *t);
void test_write(struct t_ctx *t);
void test_write_append(struct t_ctx *t);
void test_statfs(struct t_ctx *t);
void test_access(struct t_ctx *t);
void test_fallocate(struct t_ctx *t);
void test_lseek(struct t_ctx *t);
void test_copy_file_range(struct t_ctx *t);
void test_syncfs(struct t_ctx *t);
void test_readonly(struct t_ctx *t);
/* dirs.c */
void test_readdir(struct t_ctx *t);
void test_readdirplus(struct t_ctx *t);
void test_large_directory(struct t_ctx *t);
void test_many_lookups_low_fd_limit(struct t_ctx *t);
/* xattr.c */
void test_posix_acl(struct t_ctx *t);
void test_posix_acl_needs_kernel(struct t_ctx *t);
void test_security_label(struct t_ctx *t);
void test_security_label_needs_738(struct t_ctx *t);
void test_supp_groups(struct t_ctx *t);
void test_xattrmap(struct t_ctx *t);
void test_xattrmap_unterminated(struct t_ctx *t);
void test_xattr(struct t_ctx *t);
void test_xattr_readonly(struct t_ctx *t);
/* options.c */
void test_submounts(struct t_ctx *t);
void test_no_submounts(struct t_ctx *t);
void test_file_handles_mandatory(struct t_ctx *t);
void test_file_handles_never(struct t_ctx *t);
void test_translate_ids(struct t_ctx *t);
void test_writeback(struct t_ctx *t);
void test_no_writeback(struct t_ctx *t);
void test_allow_direct_io(struct t_ctx *t);
void test_direct_io_stripped(struct t_ctx *t);
void test_preserve_noatime(struct t_ctx *t);
void test_noatime_stripped(struct t_ctx *t);
void test_allow_mmap(struct t_ctx *t);

/* fdcache.c */
void test_fdcache_evicts(struct t_ctx *t);
void test_fdcache_deep(struct t_ctx *t);
void test_fdcache_guest_rename(struct t_ctx *t);
void test_fdcache_host_rename(struct t_ctx *t);
void test_fdcache_unlinked(struct t_ctx *t);
void test_fdcache_concurrent(struct t_ctx *t);
void test_guest_fd_budget(struct t_ctx *t);

#endif
