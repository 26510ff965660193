#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

static enum vfsd_log_level log_level = VFSD_LOG_INFO;
static bool log_syslog;

static const char *const level_names[] = {
	[VFSD_LOG_OFF] = "off",     [VFSD_LOG_ERROR] = "error", [VFSD_LOG_WARN] = "warn",
	[VFSD_LOG_INFO] = "info",   [VFSD_LOG_DEBUG] = "debug", [VFSD_LOG_TRACE] = "trace",
};

int vfsd_log_level_parse(const char *name, enum vfsd_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum vfsd_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void vfsd_log_init(enum vfsd_log_level level, bool use_syslog, const char *ident)
{
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID, LOG_USER);
}

enum vfsd_log_level vfsd_log_get_level(void)
{
	return log_level;
}

void vfsd_log(enum vfsd_log_level level, const char *fmt, ...)
{
	static const int syslog_prio[] = {
		[VFSD_LOG_ERROR] = LOG_ERR,  [VFSD_LOG_WARN] = LOG_WARNING, [VFSD_LOG_INFO] = LOG_INFO,
		[VFSD_LOG_DEBUG] = LOG_DEBUG, [VFSD_LOG_TRACE] = LOG_DEBUG,
	};
	int saved = errno;
	va_list ap;

	if (level == VFSD_LOG_OFF || level > log_level)
		return;
	va_start(ap, fmt);
	if (log_syslog) {
		vsyslog(syslog_prio[level], fmt, ap);
	} else {
		char line[1024];
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		vsnprintf(line, sizeof(line), fmt, ap);
		fprintf(stderr, "[%04d-%02d-%02dT%02d:%02d:%02dZ %s vfsd] %s\n", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			level == VFSD_LOG_ERROR  ? "ERROR" :
			level == VFSD_LOG_WARN   ? "WARN" :
			level == VFSD_LOG_INFO   ? "INFO" :
			level == VFSD_LOG_DEBUG  ? "DEBUG" : "TRACE",
			line);
	}
	va_end(ap);
	errno = saved;
}
