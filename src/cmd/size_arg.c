/* Sizes on the command line: "4096", "0x1000", "64K", "4M", "1G", "2T"
 * (powers of 1024; "KiB", "MiB"... and lower case too). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd.h"

int cli_parse_size(const char *text, uint64_t *out)
{
	static const char units[] = "KMGT";
	unsigned long long v;
	const char *unit;
	char *end;
	int shift = 0;

	if (!text || !isdigit((unsigned char)text[0]))
		return -1;
	/* Decimal, or hex with 0x: a leading zero is no octal here. */
	errno = 0;
	v = strncasecmp(text, "0x", 2) ? strtoull(text, &end, 10)
				       : strtoull(text, &end, 16);
	if (errno)
		return -1;
	if (*end) {
		unit = strchr(units, toupper((unsigned char)*end));
		if (!unit)
			return -1;
		shift = 10 * (int)(unit - units + 1);
		end++;
		if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B"))
			return -1;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}
