/* Images and bmaps at URLs (http, https, ftp, ftps, sftp, scp, file), read
 * through libcurl (url_curl.c).
 *
 * Requests: open asks for the first 64 KiB and waits for the answer (FTP,
 * SFTP, file: for the size), so a 404 fails before DEST is touched. The
 * copy's range walker reads exactly the bytes of each range and skips each
 * hole, so once the reader has skipped, each request asks for exactly what
 * read() wants and only mapped bytes cross the network; a small hole is
 * received and dropped instead of costing a new request, within a budget
 * (1/32 of the bytes read). Before any skip, a file that starts like a
 * compressed stream gets doubling requests, then the rest in one; anything
 * else gets what read() wants, growing slowly, so a long first range is
 * not overshot by more than 1/32.
 *
 * Resume: a dropped connection or a stall (no byte for timeout_sec while
 * read() waits; not libcurl's low-speed limit, which would also fire while
 * the consumer is busy) is retried from the byte reached, with a Range
 * request, up to opts->retries times in a row with exponential backoff;
 * HTTP 408, 429, 500, 502, 503 and 504 as well. Retries that bring no new
 * byte do not multiply the wait: 2 x timeout_sec of waiting (stalls and
 * back-off) without a new byte ends the download, whatever retries are
 * left. Before the server has answered once, connection failures are
 * reported at once. Every wait looks at opts->interrupted at least every
 * 200 ms.
 *
 * Versions: every answer must show the ETag, Last-Modified and size (FTP,
 * SFTP: size and time) of the first, or the copy stops: two versions are
 * never spliced. Over HTTP each ranged request after the first answer
 * carries If-Range with the first ETag (else Last-Modified), so a server
 * whose file changed answers 200 with the new file, which is refused. A
 * first answer with neither cannot be tied to: the file is then read as
 * one stream from its start and a drop after byte 0 ends the download.
 *
 * The one exception to "the library never prints": each retry is announced
 * on stderr, since the ABI has no channel for notices and a silent wait of
 * seconds would look like a hang. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bmaptk/bmaptk.h>

#include "url.h"
#include "util.h"

#define FIRST_REQUEST	 (64u << 10)
#define STREAM_AFTER	 (16u << 20)  /* compressed: ask for the rest */
#define RAW_STREAM_AFTER (256u << 20) /* others, if they never skip */
#define RAW_STEP	 (4u << 20)
#define BUFFER_SIZE	 (1u << 20)
#define COALESCE_MAX	 (1u << 20)   /* drop holes up to this size... */
#define COALESCE_FREE	 (256u << 10) /* ...within this + 1/32 of the data */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Names shown in messages must outlive the stream; those made here (URLs
 * without their credentials) are kept, once each, until exit. */
struct shown_name {
	struct shown_name *next;
	char name[];
};
static struct shown_name *shown_names;
static pthread_mutex_t shown_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *intern(char *name)
{
	struct shown_name *n;
	const char *found = NULL;

	pthread_mutex_lock(&shown_lock);
	for (n = shown_names; n && !found; n = n->next)
		if (!strcmp(n->name, name))
			found = n->name;
	if (!found && (n = malloc(sizeof(*n) + strlen(name) + 1))) {
		strcpy(n->name, name);
		n->next = shown_names;
		shown_names = n;
		found = n->name;
	}
	pthread_mutex_unlock(&shown_lock);
	free(name);
	return found;
}

static int scheme_is(const char *location, const char *scheme)
{
	size_t n = strlen(scheme);

	return !strncasecmp(location, scheme, n) &&
	       !strncmp(location + n, "://", 3);
}

/* Where redirects may lead from a URL of this scheme: the scheme itself,
 * and from a cleartext one (http, ftp) also https; so a download that
 * starts on https (or sftp, ftps, scp) stays on it. Only HTTP answers
 * redirect, but a proxy may answer for the others. */
static const char *redirect_protocols(const char *scheme)
{
	static const struct {
		const char *scheme, *to;
	} rules[] = {
	    {"http", "http,https"}, {"https", "https"}, {"ftp", "ftp,https"},
	    {"ftps", "ftps"},	    {"sftp", "sftp"},	{"scp", "scp"},
	    {"file", "file"},
	};

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (!strcmp(scheme, rules[i].scheme))
			return rules[i].to;
	return "";
}

static int in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p; p += strcspn(p, ",")) {
		if (*p == ',')
			p++;
		if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0'))
			return 1;
	}
	return 0;
}

int url_redirect_allowed(struct url_stream *s, const char *scheme)
{
	if (!scheme[0] || in_list(s->redir_protocols, scheme))
		return 1;
	if (!strcmp(s->redir_protocols, s->scheme))
		url_fail(s, 0, 0,
			 "refusing the server's redirect from %s to %s (a "
			 "download that starts on %s stays on %s)",
			 s->scheme, scheme, s->scheme, s->scheme);
	else
		url_fail(
		    s, 0, 0,
		    "refusing the server's redirect from %s to %s (from %s, "
		    "redirects are followed to %s and https only)",
		    s->scheme, scheme, s->scheme, s->scheme);
	return 0;
}

static int url_probe(const char *location)
{
	static const char *const ours[] = {"http", "https", "ftp",  "ftps",
					   "sftp", "scp",   "file", NULL};
	const char *const *have;
	const curl_version_info_data *info;

	for (size_t i = 0; ours[i]; i++) {
		if (!scheme_is(location, ours[i]))
			continue;
		/* Without libcurl, open() says why; bid so that it is asked. */
		if (!curl_api_load(NULL))
			return 1;
		info = curl_version_info(CURLVERSION_NOW);
		for (have = info->protocols; have && *have; have++)
			if (!strcasecmp(*have, ours[i]))
				return 1;
		return 0;
	}
	return 0;
}

static const char *reason_phrase(long status, const char *given)
{
	static const struct {
		long status;
		const char *text;
	} known[] = {
	    {400, "Bad Request"},
	    {401, "Unauthorized"},
	    {403, "Forbidden"},
	    {404, "Not Found"},
	    {408, "Request Timeout"},
	    {410, "Gone"},
	    {416, "Range Not Satisfiable"},
	    {429, "Too Many Requests"},
	    {500, "Internal Server Error"},
	    {502, "Bad Gateway"},
	    {503, "Service Unavailable"},
	    {504, "Gateway Timeout"},
	};

	if (given[0])
		return given;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i].status == status)
			return known[i].text;
	return "";
}

static int http_error(struct url_stream *s)
{
	const struct url_response *r = &s->resp;
	long st = r->status;
	int gone = st == 404 || st == 410;
	int transient = st == 408 || st == 429 || st == 500 || st == 502 ||
			st == 503 || st == 504;

	return url_fail(s, transient, gone ? ENOENT : 0, "HTTP error %ld %s",
			st, reason_phrase(st, r->reason));
}

/* Is this answer about the same file as the first one? */
static int same_version(struct url_stream *s, const struct url_version *v)
{
	const struct url_version *f = &s->first;
	char was[200], now[200];

	if (f->etag[0] && v->etag[0] && strcmp(f->etag, v->etag)) {
		snprintf(was, sizeof(was), "ETag %s", f->etag);
		snprintf(now, sizeof(now), "%s", v->etag);
	} else if (f->last_modified[0] && v->last_modified[0] &&
		   strcmp(f->last_modified, v->last_modified)) {
		snprintf(was, sizeof(was), "Last-Modified %s",
			 f->last_modified);
		snprintf(now, sizeof(now), "%s", v->last_modified);
	} else if (f->mtime >= 0 && v->mtime >= 0 && f->mtime != v->mtime) {
		snprintf(was, sizeof(was), "modification time %lld",
			 (long long)f->mtime);
		snprintf(now, sizeof(now), "%lld", (long long)v->mtime);
	} else if (f->total != BMAPTK_SIZE_UNKNOWN &&
		   v->total != BMAPTK_SIZE_UNKNOWN && f->total != v->total) {
		snprintf(was, sizeof(was), "size %llu",
			 (unsigned long long)f->total);
		snprintf(now, sizeof(now), "%llu",
			 (unsigned long long)v->total);
	} else {
		return 1;
	}
	url_fail(s, 0, 0,
		 "the file changed on the server during the download (%s, now "
		 "%s); stopping rather than mixing two versions",
		 was, now);
	return 0;
}

static void first_answer(struct url_stream *s, const struct url_version *v)
{
	s->first = *v;
	s->answered = 1;
	s->base.size = v->total;
}

/* What ties a later ranged request to the first answer's version of the
 * file, for If-Range: its ETag, unless weak (which If-Range must not
 * carry), else its Last-Modified. NULL: nothing does. */
static const char *validator(const struct url_version *v)
{
	if (v->etag[0] && strncmp(v->etag, "W/", 2))
		return v->etag;
	if (v->last_modified[0])
		return v->last_modified;
	return NULL;
}

static int http_first_answer(struct url_stream *s, const struct url_version *v)
{
	const char *tag = validator(v);
	char line[sizeof(v->etag) + 16];

	first_answer(s, v);
	if (!tag) {
		/* Two answers could be two versions with nothing to tell
		 * them apart: one stream, never resumed (http_first). */
		s->unversioned = 1;
		return 0;
	}
	snprintf(line, sizeof(line), "If-Range: %s", tag);
	if (!(s->if_range = curl_slist_append(NULL, line)))
		return url_fail(s, 0, ENOMEM, "out of memory");
	return 0;
}

/* A 200 to a request from byte > 0: the file from its start, which the
 * download cannot use. */
static int range_ignored(struct url_stream *s)
{
	const char *tag = s->ranged ? validator(&s->first) : NULL;
	char why[300] = "";

	if (tag)
		snprintf(why, sizeof(why),
			 "; the whole file in answer to If-Range %s means the "
			 "file changed on the server (or that the server "
			 "ignores Range when resuming)",
			 tag);
	return url_fail(s, 0, 0,
			"the server ignored the Range request (HTTP 200 "
			"instead of 206), so the download cannot continue at "
			"byte %llu%s",
			(unsigned long long)s->req_start, why);
}

int url_http_answer(struct url_stream *s)
{
	struct url_response *r = &s->resp;

	if (r->status == 206) {
		if (!r->has_range)
			return url_fail(s, 0, 0,
					"the server answered a Range request "
					"without a usable Content-Range");
		if (r->range_first != s->req_start)
			return url_fail(s, 0, 0,
					"the server sent bytes from %llu when "
					"asked for %llu",
					(unsigned long long)r->range_first,
					(unsigned long long)s->req_start);
	} else if (r->status == 200) {
		r->v.total = r->content_length;
		/* To a ranged request after the first answer, which carried
		 * If-Range: the file is not the one we began with. */
		if (s->answered && s->ranged && !same_version(s, &r->v))
			return -1;
		if (s->req_start > 0)
			return range_ignored(s);
		/* The whole file follows: read it as one stream. */
		s->no_ranges = 1;
		s->req_end = URL_OPEN_END;
	} else {
		return http_error(s);
	}
	if (!s->answered)
		return http_first_answer(s, &r->v);
	if (!same_version(s, &r->v))
		return -1;
	return 0;
}

/* FTP, SFTP, file: ask for the size and time without a body. */
static int stat_file(struct url_stream *s, struct url_version *v,
		     struct bmaptk_error *err)
{
	curl_off_t size = -1, mtime = -1;
	int rc = url_transfer_start(s, 0, URL_OPEN_END, 1, err);

	if (!rc)
		rc = url_pump(s, URL_WANT_DONE, err);
	if (rc) {
		url_transfer_stop(s);
		return rc;
	}
	if (s->result != CURLE_OK)
		url_classify(s);
	if (s->fail.set) {
		url_transfer_stop(s);
		return -1;
	}
	curl_easy_getinfo(s->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &size);
	curl_easy_getinfo(s->easy, CURLINFO_FILETIME_T, &mtime);
	url_transfer_stop(s);
	memset(v, 0, sizeof(*v));
	v->total = size >= 0 ? (uint64_t)size : BMAPTK_SIZE_UNKNOWN;
	v->mtime = mtime;
	return 0;
}

static double backoff_secs(int attempt)
{
	double secs = 0.5;

	for (int i = 1; i < attempt && secs < 30; i++)
		secs *= 2;
	return MIN(secs, 30.0);
}

/* Sleep secs, counted as waiting without a new byte, in slices short
 * enough to notice an interruption at once. */
static int backoff(struct url_stream *s, double secs, struct bmaptk_error *err)
{
	struct timespec start, ts;
	double left;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if ((rc = url_interrupted(s, err)))
			break;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		left = secs - ((double)(ts.tv_sec - start.tv_sec) +
			       (double)(ts.tv_nsec - start.tv_nsec) / 1e9);
		if (left <= 0)
			break;
		left = MIN(left, 0.1);
		ts.tv_sec = 0;
		ts.tv_nsec = (long)(left * 1e9);
		nanosleep(&ts, NULL); /* EINTR: look at the flag again */
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s->waited += (double)(ts.tv_sec - start.tv_sec) +
		     (double)(ts.tv_nsec - start.tv_nsec) / 1e9;
	return rc;
}

/* A drop at byte `at` > 0 of a download that must be one stream. */
static int cannot_resume(struct url_stream *s, uint64_t at,
			 struct bmaptk_error *err)
{
	if (s->unversioned)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_IO, s->fail.err.sys_errno,
		    "%s; the server gave no %sETag or Last-Modified to tie a "
		    "resumed request to the same version of the file, so the "
		    "download cannot resume at byte %llu",
		    s->fail.err.message, s->first.etag[0] ? "strong " : "",
		    (unsigned long long)at);
	return bmaptk_set_error(
	    err, BMAPTK_ERR_IO, s->fail.err.sys_errno,
	    "%s; the server does not support Range requests, so the download "
	    "cannot resume at byte %llu",
	    s->fail.err.message, (unsigned long long)at);
}

/* The transfer failed (s->fail says why): retry it from the byte reached,
 * or turn the failure into the stream's error. Retries in a row without
 * progress are limited by opts.retries, and together with their back-off
 * by url_wait_budget() seconds without a new byte. */
static int recover(struct url_stream *s, struct bmaptk_error *err)
{
	struct url_version v;
	uint64_t at = s->xfer_pos, end = s->req_end;
	double budget = url_wait_budget(s), secs;
	char why[BMAPTK_ERROR_MAX];
	int rc;

	for (;;) {
		url_transfer_stop(s);
		if (!s->fail.retryable) {
			*err = s->fail.err;
			return err->status;
		}
		if (end != URL_OPEN_END && at >= end)
			return 0; /* all asked for arrived */
		if (s->no_ranges && at > 0)
			return cannot_resume(s, at, err);
		if (s->retries_used >= s->opts.retries)
			return bmaptk_set_error(
			    err, BMAPTK_ERR_IO, s->fail.err.sys_errno,
			    "%s (at byte %llu; gave up after %d retries)",
			    s->fail.err.message, (unsigned long long)at,
			    s->retries_used);
		secs = backoff_secs(s->retries_used + 1);
		if (budget > 0 && s->waited + secs >= budget) {
			url_waited_text(s, why, sizeof(why), 1);
			return bmaptk_set_error(err, BMAPTK_ERR_IO,
						s->fail.err.sys_errno, "%s; %s",
						s->fail.err.message, why);
		}
		s->retries_used++;
		bmaptk_warn("%s at byte %llu; retrying in %.1f s (retry %d of "
			    "%d)",
			    s->fail.err.message, (unsigned long long)at, secs,
			    s->retries_used, s->opts.retries);
		if ((rc = backoff(s, secs, err)))
			return rc;
		if (!s->http && s->answered) {
			rc = stat_file(s, &v, err);
			if (rc > 0)
				return rc;
			if (rc < 0 || !same_version(s, &v))
				continue;
		}
		return url_transfer_start(s, at, end, 0, err);
	}
}

/* Does the file start like a compressed stream, which is read from start
 * to end? (Only a guess for sizing requests, never for decoding.) */
static int looks_compressed(const struct url_stream *s)
{
	static const struct {
		size_t len;
		const char *magic;
	} known[] = {
	    {2, "\x1f\x8b"}, /* gzip */
	    {6, "\xfd"
		"7zXZ\0"},	     /* xz */
	    {3, "BZh"},		     /* bzip2 */
	    {4, "\x28\xb5\x2f\xfd"}, /* zstd */
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (s->magic_len >= known[i].len &&
		    !memcmp(s->magic, known[i].magic, known[i].len))
			return 1;
	return 0;
}

/* Where the next request should end, for a reader wanting `want` bytes
 * from `from` on. A compressed file is read to its end: ask for doubling
 * amounts, then the rest. Anything else may be a raw image whose reader
 * is about to skip: ask for what it wants, growing slowly (so a range's
 * end costs at most 1/32 more) until a long run shows it does not skip. */
static uint64_t plan_end(const struct url_stream *s, uint64_t from,
			 uint64_t want)
{
	uint64_t len, end;

	if (s->no_ranges)
		return URL_OPEN_END;
	if (s->sparse)
		len = want;
	else if (looks_compressed(s))
		len = from >= STREAM_AFTER
			  ? UINT64_MAX
			  : MAX(want, MAX(from, FIRST_REQUEST));
	else
		len = from >= RAW_STREAM_AFTER
			  ? UINT64_MAX
			  : MAX(want, MAX(MIN(from / 32, (uint64_t)RAW_STEP),
					  (uint64_t)FIRST_REQUEST));
	if (len == UINT64_MAX && s->can_pause)
		return URL_OPEN_END;
	if (!s->can_pause) /* the whole request must fit the buffer */
		len = MIN(len, (uint64_t)s->cap);
	end = from + MAX(len, 1);
	if (end < from ||
	    (s->base.size != BMAPTK_SIZE_UNKNOWN && end >= s->base.size))
		return URL_OPEN_END;
	return end;
}

/* The transfer ended: was it complete? If so, the next read starts a new
 * request; if not, retry. */
static int finish_transfer(struct url_stream *s, struct bmaptk_error *err)
{
	uint64_t end = s->req_end;

	if (end == URL_OPEN_END ||
	    (s->base.size != BMAPTK_SIZE_UNKNOWN && end > s->base.size))
		end = s->base.size;
	/* A connection lost after the last byte asked for costs nothing. */
	if ((s->result != CURLE_OK || s->fail.set) &&
	    (s->fail.set || end == BMAPTK_SIZE_UNKNOWN || s->xfer_pos < end)) {
		url_classify(s);
		return recover(s, err);
	}
	url_transfer_stop(s);
	if (end == BMAPTK_SIZE_UNKNOWN) {
		/* The file's end, wherever it is. */
		s->base.size = s->xfer_pos;
		s->eof = 1;
		return 0;
	}
	if (s->xfer_pos >= end) {
		s->retries_used = 0;
		return 0;
	}
	url_fail(s, 1, ECONNRESET,
		 "the server sent only %llu of %llu bytes asked for",
		 (unsigned long long)(s->xfer_pos - s->req_start),
		 (unsigned long long)(end - s->req_start));
	return recover(s, err);
}

static int at_end(const struct url_stream *s)
{
	return s->eof ||
	       (s->base.size != BMAPTK_SIZE_UNKNOWN && s->pos >= s->base.size);
}

static size_t take_buffered(struct url_stream *s, void *buf, size_t len)
{
	size_t n = MIN(len, s->len);

	memcpy(buf, s->buf + s->head, n);
	s->head += n;
	s->len -= n;
	if (!s->len)
		s->head = 0;
	s->pos += n;
	s->delivered += n;
	return n;
}

static ssize_t url_read(struct bmaptk_stream *bs, void *buf, size_t len,
			struct bmaptk_error *err)
{
	struct url_stream *s = (struct url_stream *)bs;
	size_t got;
	int rc;

	if (len == 0)
		return 0;
	for (;;) {
		if (s->len)
			return (ssize_t)take_buffered(s, buf, len);
		if (at_end(s))
			return 0;
		if (!s->active &&
		    url_transfer_start(s, s->xfer_pos,
				       plan_end(s, s->xfer_pos, len + s->drop),
				       0, err))
			return -1;
		s->dst = buf;
		s->dst_room = len;
		s->dst_got = 0;
		rc = url_pump(s, URL_WANT_DATA, err);
		got = s->dst_got;
		s->dst = NULL;
		s->dst_got = 0;
		if (got) {
			s->pos += got;
			s->delivered += got;
			return (ssize_t)got;
		}
		if (rc)
			return -1;
		if (s->done && finish_transfer(s, err))
			return -1;
	}
}

/* Let a transfer that delivered all it was asked for end cleanly, so its
 * connection is kept for the next request. */
static void settle(struct url_stream *s)
{
	struct bmaptk_error ignored;

	if (s->active && !s->done && s->req_end != URL_OPEN_END &&
	    s->xfer_pos >= s->req_end)
		url_pump(s, URL_WANT_DONE, &ignored);
	url_transfer_stop(s);
}

static int url_skip(struct bmaptk_stream *bs, uint64_t n,
		    struct bmaptk_error *err)
{
	struct url_stream *s = (struct url_stream *)bs;
	uint64_t target, gap;

	if (n <= s->len) {
		s->head += (size_t)n;
		s->len -= (size_t)n;
		s->pos += n;
		if (!s->len)
			s->head = 0;
		return 0;
	}
	n -= s->len;
	s->pos += s->len;
	s->len = s->head = 0;
	target = s->pos + n;
	if (s->base.size != BMAPTK_SIZE_UNKNOWN && target > s->base.size)
		return bmaptk_set_error(
		    err, BMAPTK_ERR_USAGE, 0,
		    "%s: the image ends before the bmap says it does",
		    s->shown);
	gap = target - s->xfer_pos;
	if (s->no_ranges ||
	    (gap <= COALESCE_MAX &&
	     s->dropped + gap <= s->delivered / 32 + COALESCE_FREE)) {
		/* Cheaper to receive and drop than to ask again. */
		s->drop += n;
		s->dropped += n;
		s->pos = target;
		if (!s->no_ranges)
			s->sparse = 1;
		return 0;
	}
	s->sparse = 1;
	settle(s);
	s->xfer_pos = s->pos = target;
	s->drop = 0;
	return 0;
}

static void url_close(struct bmaptk_stream *bs)
{
	struct url_stream *s = (struct url_stream *)bs;

	if (s->easy) {
		url_transfer_stop(s);
		curl_easy_cleanup(s->easy);
	}
	if (s->multi)
		curl_multi_cleanup(s->multi);
	if (s->if_range)
		curl_slist_free_all(s->if_range);
	free(s->buf);
	free(s->url);
	free(s);
}

static const struct bmaptk_stream_ops url_ops = {
    .read = url_read,
    .skip = url_skip,
    .close = url_close,
};

/* HTTP: ask for the first bytes and wait for the answer's headers. An
 * answer without a validator (ETag, Last-Modified) cannot tie a second
 * request to the version of the first: then the file is asked for again,
 * whole, and read as one stream (unless the first request covers it). */
static int http_first(struct url_stream *s, struct bmaptk_error *err)
{
	int rc = url_transfer_start(s, 0, FIRST_REQUEST, 0, err);

	while (!rc) {
		rc = url_pump(s, URL_WANT_HEADERS, err);
		if (rc)
			break;
		if (s->resp.done && !s->fail.set && s->unversioned &&
		    !s->no_ranges) {
			s->no_ranges = 1;
			if (s->base.size != BMAPTK_SIZE_UNKNOWN &&
			    s->base.size <= s->req_end)
				break;
			url_transfer_stop(s);
			s->len = s->head = 0;
			s->magic_len = 0;
			s->received = 0;
			rc = url_transfer_start(s, 0, URL_OPEN_END, 0, err);
			continue;
		}
		if (s->resp.done && !s->fail.set)
			break;
		if (s->done) {
			url_classify(s);
			rc = recover(s, err);
		}
	}
	return rc;
}

/* FTP, SFTP, file: ask for the size; the data comes at the first read. */
static int stat_first(struct url_stream *s, struct bmaptk_error *err)
{
	struct url_version v;
	int rc = stat_file(s, &v, err);

	if (rc < 0) {
		*err = s->fail.err;
		return err->status;
	}
	if (!rc)
		first_answer(s, &v);
	if (!rc && scheme_is(s->url, "scp"))
		s->no_ranges = 1; /* SCP cannot start mid-file */
	return rc;
}

static struct bmaptk_stream *url_open(const char *location,
				      const struct bmaptk_source_opts *opts,
				      struct bmaptk_error *err)
{
	char *redacted = NULL;
	struct url_stream *s;
	int rc;

	if (!curl_api_load(err))
		return NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, 0, "libcurl: %s",
				 curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s && (redacted = bmaptk_redact(location))) {
		if (strcmp(redacted, location)) {
			s->shown = intern(redacted);
		} else {
			s->shown = location; /* the caller's: it outlives us */
			free(redacted);
		}
	}
	if (!s || !s->shown || !(s->url = strdup(location)) ||
	    !(s->buf = malloc(BUFFER_SIZE))) {
		if (s)
			free(s->url);
		free(s);
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM, "out of memory");
		return NULL;
	}
	s->cap = BUFFER_SIZE;
	s->base.ops = &url_ops;
	s->base.name = s->shown;
	s->base.size = BMAPTK_SIZE_UNKNOWN;
	s->opts = *opts;
	for (size_t i = 0; location[i] != ':' && i + 1 < sizeof(s->scheme); i++)
		s->scheme[i] = (char)tolower((unsigned char)location[i]);
	s->redir_protocols = redirect_protocols(s->scheme);
	s->http = scheme_is(location, "http") || scheme_is(location, "https");
	s->can_pause = !scheme_is(location, "file");
	rc = url_curl_setup(s, err);
	if (!rc)
		rc = s->http ? http_first(s, err) : stat_first(s, err);
	if (rc) {
		url_close(&s->base);
		return NULL;
	}
	return &s->base;
}

static const struct bmaptk_source_module url_source = {
    .probe = url_probe,
    .open = url_open,
};

const struct bmaptk_module bmaptk_source_url = {
    .abi_version = BMAPTK_ABI_VERSION,
    .kind = BMAPTK_MODULE_SOURCE,
    .name = "url",
    .description = "http, https, ftp, ftps, sftp, scp and file URLs "
		   "(libcurl); ranged, resumable downloads",
    .version = "1",
    .priority = 0,
    .u.source = &url_source,
};
