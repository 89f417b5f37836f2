/* Internals of the URL source (url.c: policy; url_curl.c: libcurl). */
#ifndef BMAPTK_URL_H
#define BMAPTK_URL_H

#include <stdint.h>
#include <time.h>

#include "curl_calls.h"

#include <bmaptk/module.h>

/* A request's end when it runs to the end of the file. */
#define URL_OPEN_END UINT64_MAX

/* What an answer says about the file's version. Every answer is compared
 * with the first, so two versions of an image are never spliced. */
struct url_version {
	char etag[128];
	char last_modified[64];
	int64_t mtime;	/* FTP, SFTP, file: seconds, or -1 if unknown */
	uint64_t total; /* the file's size, BMAPTK_SIZE_UNKNOWN if unknown */
};

/* The HTTP response whose headers are coming in. */
struct url_response {
	long status;
	char reason[64];
	int has_location;
	/* the Location's scheme, lower case; "" for a relative one */
	char location_scheme[16];
	int has_range; /* a Content-Range "bytes first-last/total" */
	uint64_t range_first, range_last;
	uint64_t content_length; /* BMAPTK_SIZE_UNKNOWN if absent */
	struct url_version v;
	int done; /* the final response's headers are all in */
};

/* Why the current transfer failed; retryable means a later request may
 * succeed (a dropped connection, a stall, a 503). */
struct url_failure {
	int set;
	int retryable;
	struct bmaptk_error err;
};

struct url_stream {
	struct bmaptk_stream base;
	char *url;	   /* as given, credentials included: for libcurl */
	const char *shown; /* without credentials: for messages */
	struct bmaptk_source_opts opts;
	int http;	/* http or https: headers carry the file's version */
	char scheme[8]; /* the URL's scheme, lower case */
	/* Where redirects may lead: the starting scheme only, and from http
	 * also https (a download that starts on https stays on it). */
	const char *redir_protocols;

	CURLM *multi;
	CURL *easy;
	char errbuf[CURL_ERROR_SIZE];
	char hostkey_problem[512]; /* why the SSH host key was refused */
	char redirect_scheme[16];  /* the last redirect's, for url_classify */
	int active;		   /* easy is in multi */
	int done;		   /* the transfer finished; result says how */
	CURLcode result;
	int paused;
	int nobody;    /* a stat: what libcurl writes is its fake headers */
	int can_pause; /* not file://, whose transfer runs in one go */
	int ranged;    /* the request in flight has a Range header */
	/* "If-Range: <first ETag, else Last-Modified>", sent with every
	 * ranged request after the first answer; NULL when it had neither */
	struct curl_slist *if_range;

	/* The request in flight asks for bytes [req_start, req_end). */
	uint64_t req_start, req_end;
	uint64_t xfer_pos; /* offset of the next byte the transfer delivers */
	uint64_t pos;	   /* offset of the next byte read() returns */
	uint64_t drop;	   /* bytes the transfer delivers that nobody wants */

	/* Bytes received beyond what read()'s buffer could take:
	 * buf[head..head+len) holds the image at offset pos. */
	unsigned char *buf;
	size_t cap, head, len;
	/* read()'s buffer, filled directly while read() drives the transfer */
	unsigned char *dst;
	size_t dst_room, dst_got;

	struct url_response resp;
	struct url_version first; /* from the first answer */
	int answered;		  /* the first answer was good */
	struct url_failure fail;

	unsigned char magic[8]; /* the file's first bytes */
	size_t magic_len;
	int sparse;	  /* the reader skips: ask for exactly what it reads */
	int no_ranges;	  /* one stream from byte 0, never resumed mid-file */
	int unversioned;  /* why: the first answer had no usable validator */
	int eof;	  /* the end of a file of unknown size was reached */
	int retries_used; /* consecutive retries without progress */
	uint64_t attempt_start;
	uint64_t delivered, dropped; /* for the coalescing budget */
	uint64_t received;	     /* body bytes received in all */
	struct timespec last_progress;
	/* Seconds spent waiting (in url_pump or a back-off) since the last
	 * new byte arrived, whatever the retries; twice timeout_sec of it
	 * ends the download. wait_mark: when the current wait was last
	 * counted. */
	double waited;
	struct timespec wait_mark;
};

/* url_curl.c */
enum url_want { URL_WANT_DATA, URL_WANT_HEADERS, URL_WANT_DONE };

int url_curl_setup(struct url_stream *s, struct bmaptk_error *err);
int url_transfer_start(struct url_stream *s, uint64_t from, uint64_t end,
		       int nobody, struct bmaptk_error *err);
void url_transfer_stop(struct url_stream *s);
int url_pump(struct url_stream *s, enum url_want want,
	     struct bmaptk_error *err);
void url_classify(struct url_stream *s);
int url_fail(struct url_stream *s, int retryable, int sys_errno,
	     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Has the user asked to stop (opts.interrupted)? Then err says so and
 * BMAPTK_ERR_INTERRUPTED is returned; else 0. */
int url_interrupted(const struct url_stream *s, struct bmaptk_error *err);
/* Seconds of waiting without a new byte after which the download ends
 * (twice timeout_sec), 0 for never. */
double url_wait_budget(const struct url_stream *s);
/* Why a download ends for lack of new bytes: how long it waited, where
 * it was and what it had. before_retry: it ends before the next retry
 * because the back-off would pass url_wait_budget(). */
void url_waited_text(const struct url_stream *s, char *buf, size_t cap,
		     int before_retry);
/* Is a redirect to a URL of this scheme ("" for a relative one, which
 * keeps the scheme) allowed from s's URL? If not, s->fail says why. */
int url_redirect_allowed(struct url_stream *s, const char *scheme);

/* url.c: judge an HTTP response once its headers are in; 0 to go on, -1
 * with s->fail set to abort the transfer. */
int url_http_answer(struct url_stream *s);

#endif
