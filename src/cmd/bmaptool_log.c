/* bmaptool 3.9's log lines and number formats (its CLI.py and
 * BmapHelpers.py), written anew for bmaptk's alias. The formats follow
 * Python's: "%.1f" rounds as C's printf does, "%d" of a float truncates,
 * and divmod of a float is floored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bmaptool_log.h"
#include "cmd.h"

const char *bmaptool_human_size(double bytes, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
	double v = bytes;

	if (v == 1) {
		snprintf(buf, len, "1 byte");
		return buf;
	}
	if (v < 512) {
		snprintf(buf, len, "%lld bytes", (long long)v);
		return buf;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		v /= 1024.0;
		if (v < 1024) {
			snprintf(buf, len, "%.1f %s", v, units[i]);
			return buf;
		}
	}
	/* bmaptool's own last case: the TiB figure, named EiB. */
	snprintf(buf, len, "%.1f EiB", v);
	return buf;
}

/* Python's divmod(x, 60) for 0 <= x < 2^53: the quotient floored, the
 * remainder exact (x - 60 q is a multiple of x's ulp, so representable). */
static void divmod60(double x, double *q, double *r)
{
	double d = (double)(uint64_t)(x / 60);

	*r = x - d * 60;
	if (*r < 0) {
		d -= 1;
		*r += 60;
	} else if (*r >= 60) {
		d += 1;
		*r -= 60;
	}
	*q = d;
}

const char *bmaptool_human_time(double seconds, char *buf, size_t len)
{
	double minutes, hours, secs;
	size_t n = 0;

	if (!(seconds >= 0)) /* also NaN */
		seconds = 0;
	if (seconds > 9007199254740992.0) /* 2^53 */
		seconds = 9007199254740992.0;
	divmod60(seconds, &minutes, &secs);
	divmod60(minutes, &hours, &minutes);
	buf[0] = '\0';
	if (hours)
		n += (size_t)snprintf(buf, len, "%lldh ", (long long)hours);
	if (minutes && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%lldm ",
				      (long long)minutes);
	if (n < len)
		snprintf(buf + n, len - n, "%.1fs", secs);
	return buf;
}

const char *bmaptool_level(const char *level)
{
	const char *nc = getenv("NO_COLOR");
	int color = isatty(STDERR_FILENO) && !(nc && *nc);

	if (!strcmp(level, "error"))
		return color ? "\033[91mERROR\033[0m" : "ERROR";
	if (!strcmp(level, "warning"))
		return color ? "\033[93mWARNING\033[0m" : "WARNING";
	return level;
}

const char *bmaptool_format_done(uint64_t mapped, double seconds, char *buf,
				 size_t len)
{
	char t[64], s[32];
	/* bmaptool divides by zero there; no copy takes less than 1 ms. */
	double secs = seconds > 1e-3 ? seconds : 1e-3;
	/* mapped_size // copying_time: a floored float. */
	double speed = (double)mapped / secs;

	if (speed < 9.2e18)
		speed = (double)(uint64_t)speed;
	/* The one change to bmaptool's format: LAVA's pattern for this line
	 * takes bytes, KiB and MiB only ("[MKiBbytes]+/sec"), so a copy of
	 * 1 GiB/s or more says "1843.2 MiB/sec", not "1.8 GiB/sec" (which
	 * bmaptool would print, and LAVA would wait for in vain). */
	if (speed >= 1024.0 * 1024 * 1024)
		snprintf(s, sizeof(s), "%.1f MiB", speed / (1024.0 * 1024));
	else
		bmaptool_human_size(speed, s, sizeof(s));
	snprintf(buf, len, "copying time: %s, copying speed %s/sec",
		 bmaptool_human_time(seconds, t, sizeof(t)), s);
	return buf;
}

void bmaptool_log_bmap(const struct bmaptk_bmap *b)
{
	char size[32], mapped[32];

	cli_info("block map format version %u.%u", b->major, b->minor);
	cli_info("%llu blocks of size %u (%s), mapped %llu blocks (%s or "
		 "%.1f%%)",
		 (unsigned long long)b->blocks_count, b->block_size,
		 bmaptool_human_size((double)b->image_size, size, sizeof(size)),
		 (unsigned long long)b->mapped_blocks_count,
		 bmaptool_human_size((double)b->mapped_blocks_count *
					 (double)b->block_size,
				     mapped, sizeof(mapped)),
		 b->blocks_count ? (double)b->mapped_blocks_count * 100.0 /
				       (double)b->blocks_count
				 : 0.0);
}

/* os.path.basename of a path, or of a URL's path (no query, fragment). */
static void base_name(const char *p, char *buf, size_t len)
{
	const char *s = strstr(p, "://"), *end, *slash;

	if (s) {
		s = strchr(s + 3, '/');
		if (!s)
			s = "";
		end = s + strcspn(s, "?#");
	} else {
		s = p;
		end = p + strlen(p);
	}
	for (slash = end; slash > s && slash[-1] != '/'; slash--)
		;
	snprintf(buf, len, "%.*s", (int)(end - slash), slash);
}

static double started;

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bmaptool_log_start(const char *image, const char *dest, int blockdev,
			const char *bmap_path)
{
	char img[1024], where[1100], bmap[1024];

	started = now_seconds();
	if (!bmap_path) {
		cli_info("no bmap given, copy entire image to '%s'", dest);
		return;
	}
	base_name(image, img, sizeof(img));
	base_name(bmap_path, bmap, sizeof(bmap));
	if (blockdev) {
		snprintf(where, sizeof(where), "block device '%s'", dest);
	} else {
		char d[1024];
		base_name(dest, d, sizeof(d));
		snprintf(where, sizeof(where), "file '%s'", d);
	}
	cli_info("copying image '%s' to %s using bmap file '%s'", img, where,
		 bmap);
}

void bmaptool_log_sync(const char *dest)
{
	cli_info("synchronizing '%s'", dest);
}

void bmaptool_log_done(uint64_t mapped)
{
	char line[160];
	double now = now_seconds();

	cli_info("%s", bmaptool_format_done(mapped, started ? now - started : 0,
					    line, sizeof(line)));
}

void bmaptool_log_progress(struct cli_progress *p, int percent, double now)
{
	static const char wheel[] = "-\\|/";
	static unsigned turn;
	int known = p->total && p->total != BMAPTK_SIZE_UNKNOWN;

	if (!p->tty || !isatty(STDOUT_FILENO))
		return;
	if (known && percent == p->last_step)
		return;
	/* Without a size bmaptool turns a wheel, 4 times a second. */
	if (!known && p->last_draw && now - p->last_draw < 0.25)
		return;
	/* Each line ends in a newline, and the next goes back up over it,
	 * so that an error always starts on a line of its own. */
	if (p->last_draw)
		fputs("\033[1A", stderr);
	if (known)
		fprintf(stderr, "\rbmaptool: info: %d%% copied\n", percent);
	else
		fprintf(stderr, "\r%c\n", wheel[turn++ % 4]);
	p->last_draw = now;
}
