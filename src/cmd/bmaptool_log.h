/* bmaptk run as "bmaptool" (cli.bmaptool) logs as bmaptool 3.9 does:
 * "bmaptool: info: ...", "bmaptool: WARNING: ...", "bmaptool: ERROR: ...",
 * and copy's lines in its words and number formats, so what waits for
 * them (LAVA waits for "bmaptool: info: copying time: 13.2s, copying speed
 * 72.5 MiB/sec") sees them. The callers test cli.bmaptool; the line
 * functions print through cli_info. */
#ifndef BMAPTK_BMAPTOOL_LOG_H
#define BMAPTK_BMAPTOOL_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <bmaptk/bmaptk.h>

struct cli_progress;

/* bmaptool's human_size: "1 byte", "N bytes" below 512, else one decimal
 * of KiB, MiB, GiB or TiB ("0.5 KiB", "5.9 MiB"). */
const char *bmaptool_human_size(double bytes, char *buf, size_t len);

/* bmaptool's human_time: "13.2s", "5m 30.3s", "1h 2m 3.4s" ("1h 0.0s"
 * when the minutes are 0). */
const char *bmaptool_human_time(double seconds, char *buf, size_t len);

/* The level word of a message of level ("info", "warning", "error"):
 * "info", "WARNING", "ERROR"; coloured as bmaptool colours them when
 * stderr is a terminal (and NO_COLOR is not set). */
const char *bmaptool_level(const char *level);

/* "copying time: T, copying speed S/sec" for mapped bytes in seconds;
 * a speed of 1 GiB/s or more in MiB, as LAVA's pattern needs. */
const char *bmaptool_format_done(uint64_t mapped, double seconds, char *buf,
				 size_t len);

/* Copy's lines, in bmaptool's order: */
/* "block map format version 2.0", "N blocks of size B (S), mapped M
 * blocks (S or P%)". */
void bmaptool_log_bmap(const struct bmaptk_bmap *b);
/* "copying image 'I' to file 'D' using bmap file 'B'" (block device 'D'
 * for a block device; basenames as bmaptool shows them), or without a
 * bmap "no bmap given, copy entire image to 'D'". Starts the clock of
 * bmaptool_log_done. */
void bmaptool_log_start(const char *image, const char *dest, int blockdev,
			const char *bmap_path);
/* "synchronizing 'D'", before the final flush. */
void bmaptool_log_sync(const char *dest);
/* "copying time: ..., copying speed .../sec", timed from
 * bmaptool_log_start to now. */
void bmaptool_log_done(uint64_t mapped);

/* bmaptool's progress, "bmaptool: info: N% copied" redrawn in place, when
 * stdout and stderr are terminals; nothing otherwise. For
 * cli_progress_update, before it records percent as p->last_step. */
void bmaptool_log_progress(struct cli_progress *p, int percent, double now);

#endif
