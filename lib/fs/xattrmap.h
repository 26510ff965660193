/*
 * xattr name mapping (--xattrmap): which extended attribute names the guest may use, under
 * which host names they are stored, and which host names a guest's list shows.
 */
#ifndef VFSD_FS_XATTRMAP_H
#define VFSD_FS_XATTRMAP_H

#include <stdbool.h>
#include <stddef.h>

enum vfsd_xattrmap_type { XATTRMAP_PREFIX, XATTRMAP_OK, XATTRMAP_BAD, XATTRMAP_UNSUPPORTED };

#define XATTRMAP_CLIENT 1u /* names from the guest: get, set, remove */
#define XATTRMAP_SERVER 2u /* names from the host: list */

struct vfsd_xattrmap_rule {
	enum vfsd_xattrmap_type type;
	unsigned int scope; /* XATTRMAP_CLIENT and/or XATTRMAP_SERVER */
	char *key;	    /* the guest-name prefix a client rule matches */
	char *prepend;	    /* the host-name prefix added, or matched by a server rule */
};

struct vfsd_xattrmap {
	struct vfsd_xattrmap_rule *rules;
	size_t n;
	bool terminated; /* a rule matches every name in both directions */
};

/*
 * Parses virtiofsd's grammar: rules "<d>type<d>scope<d>key<d>prepend<d>" with any
 * delimiter d per rule, separated by optional whitespace, and one final short form
 * "<d>map<d>key<d>prepend<d>". Returns 0, or -EINVAL with a message in err.
 */
int vfsd_xattrmap_parse(const char *spec, struct vfsd_xattrmap *m, char *err, size_t errlen);
void vfsd_xattrmap_free(struct vfsd_xattrmap *m);

/*
 * A guest name as the host stores it, in out (outlen bytes). Returns 0; -EPERM for a "bad"
 * name or a name no rule matches; -ENOTSUP for an "unsupported" one; -ERANGE if the host
 * name does not fit.
 */
int vfsd_xattrmap_to_host(const struct vfsd_xattrmap *m, const char *name, char *out,
			  size_t outlen);
/* A host name as a guest's list shows it (a suffix of name), or NULL if it is hidden. */
const char *vfsd_xattrmap_to_guest(const struct vfsd_xattrmap *m, const char *name);

#endif
