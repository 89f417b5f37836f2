#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "events.h"

static char last_error[2048];

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

json_t *ev_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t cap = 3 * strlen((const char *)p) + 1, used = 0;
	char *out = malloc(cap);
	json_t *j;

	if (!out)
		return json_null();
	while (*p) {
		size_t n = utf8_len(p);
		if (n) {
			memcpy(out + used, p, n);
			used += n;
			p += n;
		} else {
			memcpy(out + used, "\xef\xbf\xbd", 3);
			used += 3;
			p++;
		}
	}
	j = json_stringn(out, used);
	free(out);
	return j ? j : json_null();
}

void ev_emit(const char *type, json_t *fields)
{
	json_t *obj = json_object();
	char *line;

	json_object_set_new(obj, "event", json_string(type));
	if (fields)
		json_object_update(obj, fields);
	json_decref(fields);
	line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (line) {
		fprintf(stderr, "%s\n", line);
		free(line);
	}
	json_decref(obj);
}

/* The first error is the cause; later ones tell what it left behind. */
void ev_note_error(const char *message)
{
	if (!last_error[0])
		snprintf(last_error, sizeof(last_error), "%s", message);
}

void ev_error(int exit_code)
{
	json_t *f = json_object();

	json_object_set_new(f, "exit", json_integer(exit_code));
	json_object_set_new(f, "message", ev_string(last_error));
	ev_emit("error", f);
}
