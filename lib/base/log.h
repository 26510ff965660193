/* Logging: levels as virtiofsd's (off < error < warn < info < debug < trace), to stderr or syslog. */
#ifndef VFSD_BASE_LOG_H
#define VFSD_BASE_LOG_H

#include <stdbool.h>

enum vfsd_log_level {
	VFSD_LOG_OFF = 0,
	VFSD_LOG_ERROR,
	VFSD_LOG_WARN,
	VFSD_LOG_INFO,
	VFSD_LOG_DEBUG,
	VFSD_LOG_TRACE,
};

/* Parses a level name (case-insensitive); returns -EINVAL for an unknown name. */
int vfsd_log_level_parse(const char *name, enum vfsd_log_level *out);
void vfsd_log_init(enum vfsd_log_level level, bool use_syslog, const char *ident);
enum vfsd_log_level vfsd_log_get_level(void);
void vfsd_log(enum vfsd_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define vfsd_log_enabled(lvl) (vfsd_log_get_level() >= (lvl))
#define log_error(...) vfsd_log(VFSD_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) vfsd_log(VFSD_LOG_WARN, __VA_ARGS__)
#define log_info(...) vfsd_log(VFSD_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                \
	do {                                          \
		if (vfsd_log_enabled(VFSD_LOG_DEBUG)) \
			vfsd_log(VFSD_LOG_DEBUG, __VA_ARGS__); \
	} while (0)
#define log_trace(...)                                \
	do {                                          \
		if (vfsd_log_enabled(VFSD_LOG_TRACE)) \
			vfsd_log(VFSD_LOG_TRACE, __VA_ARGS__); \
	} while (0)

#endif
