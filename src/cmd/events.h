/* --json: one JSON object per line on stderr instead of the human output.
 * docs/json-events.md lists the events. */
#ifndef BMAPTK_EVENTS_H
#define BMAPTK_EVENTS_H

#include <jansson.h>

/* A JSON string of s, with bytes that are not UTF-8 replaced by U+FFFD,
 * so that any file name gives valid JSON. */
json_t *ev_string(const char *s);

/* {"event": type, ...fields}: fields (taken) is an object or NULL. */
void ev_emit(const char *type, json_t *fields);

/* The final error event, from main, with the exit code. */
void ev_error(int exit_code);
/* Remember the first error message for ev_error. */
void ev_note_error(const char *message);

#endif
