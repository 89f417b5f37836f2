/* create --fs's summary: what was found and how much of it is mapped,
 *   disk.img: GPT, 2 partitions: p1 vfat 64.0 MiB (9.1 MiB used), p2 ext4
 *   256.0 MiB (71.3 MiB used); mapped 81.0 MiB of 330.0 MiB (24.5 %),
 *   210.0 MiB of data on the image not mapped (free space), 14 ranges,
 *   0.42 s */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

static const char *table_name(const char *table)
{
	if (!strcmp(table, "gpt"))
		return "GPT";
	if (!strcmp(table, "dos"))
		return "MBR";
	return table;
}

static void append(char *buf, size_t len, size_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t len, size_t *at, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*at >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *at, len - *at, fmt, ap);
	va_end(ap);
	if (n > 0)
		*at += (size_t)n;
}

static void describe_part(char *buf, size_t len, size_t *at,
			  const struct bmaptk_layout_part *p)
{
	char size[32], mapped[32];

	human_size(p->len, size, sizeof(size));
	human_size(p->mapped, mapped, sizeof(mapped));
	if (p->number)
		append(buf, len, at, "p%d ", p->number);
	append(buf, len, at, "%s %s", p->fstype[0] ? p->fstype : "unknown",
	       size);
	if (p->by_fs)
		append(buf, len, at, " (%s used)", mapped);
	else
		append(buf, len, at, " (not read: %s of data mapped)", mapped);
}

void report_layout(const char *image, const struct bmaptk_layout *l,
		   const struct bmaptk_bmap *b, double seconds)
{
	char line[4096], total[32], mapped[32], unmapped[32];
	uint64_t m = bmaptk_bmap_mapped_bytes(b);
	size_t at = 0;

	if (l->table[0] && !l->nparts)
		append(line, sizeof(line), &at, "%s, no partitions",
		       table_name(l->table));
	else if (l->table[0])
		append(line, sizeof(line), &at,
		       "%s, %zu partition%s: ", table_name(l->table), l->nparts,
		       l->nparts == 1 ? "" : "s");
	else
		append(line, sizeof(line), &at, "no partition table: ");
	for (size_t i = 0; i < l->nparts; i++) {
		if (i)
			append(line, sizeof(line), &at, ", ");
		describe_part(line, sizeof(line), &at, &l->parts[i]);
	}
	append(line, sizeof(line), &at, "; mapped %s of %s (%.1f %%)",
	       human_size(m, mapped, sizeof(mapped)),
	       human_size(b->image_size, total, sizeof(total)),
	       b->image_size ? 100.0 * (double)m / (double)b->image_size : 0.0);
	if (l->data_known)
		append(
		    line, sizeof(line), &at,
		    ", %s of data on the image not mapped (free space)",
		    human_size(l->data_unmapped, unmapped, sizeof(unmapped)));
	append(line, sizeof(line), &at, ", %zu range%s, %.2f s", b->nranges,
	       b->nranges == 1 ? "" : "s", seconds);
	cli_info("%s: %s", image, line);
}
