/* The URL source's use of libcurl: one easy handle driven by a multi handle
 * from the reading thread, so read() pulls bytes synchronously and memory
 * stays bounded (the transfer pauses when the buffer is full). Also the
 * parsing of HTTP headers and the translation of failures into messages. */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "url.h"
#include "util.h"

#define URL_CURL_BUFFER (256 << 10) /* libcurl's receive buffer */
#define POLL_SLICE	200	    /* ms: how often a wait looks at the flag */

#ifndef BMAPTK_VERSION
#define BMAPTK_VERSION "0"
#endif

int url_fail(struct url_stream *s, int retryable, int sys_errno,
	     const char *fmt, ...)
{
	va_list ap;
	int n;

	s->fail.set = 1;
	s->fail.retryable = retryable;
	s->fail.err.status = BMAPTK_ERR_IO;
	s->fail.err.sys_errno = sys_errno;
	n = snprintf(s->fail.err.message, sizeof(s->fail.err.message),
		     "%s: ", s->shown);
	if (n < 0 || (size_t)n >= sizeof(s->fail.err.message))
		return -1;
	va_start(ap, fmt);
	vsnprintf(s->fail.err.message + n, sizeof(s->fail.err.message) - n, fmt,
		  ap);
	va_end(ap);
	return -1;
}

static void now(struct timespec *t)
{
	clock_gettime(CLOCK_MONOTONIC, t);
}

static double since(const struct timespec *t)
{
	struct timespec n;

	now(&n);
	return (double)(n.tv_sec - t->tv_sec) +
	       (double)(n.tv_nsec - t->tv_nsec) / 1e9;
}

int url_interrupted(const struct url_stream *s, struct bmaptk_error *err)
{
	if (!s->opts.interrupted || !*s->opts.interrupted)
		return 0;
	return bmaptk_set_error(err, BMAPTK_ERR_INTERRUPTED, EINTR,
				"%s: interrupted", s->shown);
}

double url_wait_budget(const struct url_stream *s)
{
	return s->opts.timeout_sec > 0 ? 2.0 * s->opts.timeout_sec : 0;
}

void url_waited_text(const struct url_stream *s, char *buf, size_t cap,
		     int before_retry)
{
	char size[32] = "";

	if (s->base.size != BMAPTK_SIZE_UNKNOWN)
		snprintf(size, sizeof(size), " of %llu",
			 (unsigned long long)s->base.size);
	snprintf(buf, cap,
		 "no new byte for %.1f s in all, %stwice the %d s timeout "
		 "(at byte %llu%s; %llu bytes received; %d %s)",
		 s->waited,
		 before_retry ? "and the next retry would pass " : "",
		 s->opts.timeout_sec, (unsigned long long)s->xfer_pos, size,
		 (unsigned long long)s->received, s->retries_used,
		 s->retries_used == 1 ? "retry" : "retries");
}

/* Count the time since wait_mark as waiting without a new byte. */
static void count_wait(struct url_stream *s)
{
	s->waited += since(&s->wait_mark);
	now(&s->wait_mark);
}

/* Append to the overflow buffer, which has room (checked by the caller). */
static void stash(struct url_stream *s, const char *data, size_t n)
{
	if (s->head + s->len + n > s->cap) {
		memmove(s->buf, s->buf + s->head, s->len);
		s->head = 0;
	}
	memcpy(s->buf + s->head + s->len, data, n);
	s->len += n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	struct url_stream *s = ud;
	size_t n = size * nmemb, dropped = (size_t)MIN((uint64_t)n, s->drop);
	size_t keep = n - dropped, to_dst = 0;

	if (s->nobody)
		return n;
	if (s->req_end != URL_OPEN_END && s->xfer_pos + n > s->req_end) {
		url_fail(s, 0, 0,
			 "the server sent more than the %llu bytes asked for",
			 (unsigned long long)(s->req_end - s->req_start));
		return 0;
	}
	if (s->dst)
		to_dst = MIN(keep, s->dst_room - s->dst_got);
	/* Decide before touching anything: a paused chunk comes again. */
	if (keep - to_dst > s->cap - s->len) {
		s->paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	s->drop -= dropped;
	if (to_dst) {
		memcpy(s->dst + s->dst_got, data + dropped, to_dst);
		s->dst_got += to_dst;
	}
	stash(s, data + dropped + to_dst, keep - to_dst);
	if (s->xfer_pos == s->magic_len && s->magic_len < sizeof(s->magic)) {
		size_t m = MIN(n, sizeof(s->magic) - s->magic_len);
		memcpy(s->magic + s->magic_len, data, m);
		s->magic_len += m;
	}
	s->xfer_pos += n;
	s->received += n;
	now(&s->last_progress);
	if (n) {
		s->waited = 0;
		s->wait_mark = s->last_progress;
	}
	if (s->xfer_pos - s->attempt_start >= (1u << 20))
		s->retries_used = 0;
	return n;
}

/* Header value: skip blanks, drop the line end; returns its length. */
static size_t header_value(const char **v, const char *end)
{
	const char *p = *v;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == '\r' || end[-1] == '\n' ||
			   end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*v = p;
	return (size_t)(end - p);
}

static void copy_value(char *dst, size_t cap, const char *v, size_t len)
{
	len = MIN(len, cap - 1);
	memcpy(dst, v, len);
	dst[len] = '\0';
}

/* "bytes first-last/total" or "bytes * /total" (without the space). */
static void parse_content_range(struct url_response *r, const char *v,
				size_t len)
{
	char tmp[96], *p, *end;

	copy_value(tmp, sizeof(tmp), v, len);
	if (len < 6 || strncasecmp(tmp, "bytes ", 6))
		return;
	p = tmp + 6;
	if (*p != '*') {
		r->range_first = strtoull(p, &end, 10);
		if (end == p || *end != '-')
			return;
		p = end + 1;
		r->range_last = strtoull(p, &end, 10);
		if (end == p || r->range_last < r->range_first)
			return;
		p = end;
		r->has_range = 1;
	} else {
		p++;
	}
	if (*p != '/')
		return;
	p++;
	if (*p != '*') {
		uint64_t total = strtoull(p, &end, 10);
		if (end != p && *end == '\0')
			r->v.total = total;
	}
}

static void reset_response(struct url_response *r)
{
	memset(r, 0, sizeof(*r));
	r->content_length = BMAPTK_SIZE_UNKNOWN;
	r->v.total = BMAPTK_SIZE_UNKNOWN;
	r->v.mtime = -1;
}

static void parse_status(struct url_response *r, const char *line,
			 const char *end)
{
	const char *p = memchr(line, ' ', (size_t)(end - line)), *reason;
	char *num_end;

	reset_response(r);
	if (!p)
		return;
	r->status = strtol(p + 1, &num_end, 10);
	reason = num_end;
	copy_value(r->reason, sizeof(r->reason), reason,
		   header_value(&reason, end));
	bmaptk_debug("HTTP answer: %ld%s%s", r->status, r->reason[0] ? " " : "",
		     r->reason);
}

static int is_header(const char *line, size_t n, const char *name,
		     const char **value)
{
	size_t len = strlen(name);

	if (n <= len || line[len] != ':' || strncasecmp(line, name, len))
		return 0;
	*value = line + len + 1;
	return 1;
}

/* The scheme of a Location (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-"
 * / "." ) before a ':' that comes before any '/', '?' or '#'), lower case;
 * "" for a relative reference, which keeps the scheme. A scheme too long
 * for dst is kept cut short: it names no protocol allowed anyway. */
static void location_scheme(char *dst, size_t cap, const char *v, size_t len)
{
	size_t i = 0, n = 0;

	dst[0] = '\0';
	while (i < len && (isalnum((unsigned char)v[i]) || v[i] == '+' ||
			   v[i] == '-' || v[i] == '.'))
		i++;
	if (i == 0 || i == len || v[i] != ':' || !isalpha((unsigned char)v[0]))
		return;
	for (n = 0; n < i && n + 1 < cap; n++)
		dst[n] = (char)tolower((unsigned char)v[n]);
	dst[n] = '\0';
}

/* The end of one response's headers: a redirect or an interim response is
 * followed by another; the final one is judged. 0 aborts the transfer. */
static int headers_end(struct url_stream *s)
{
	struct url_response *r = &s->resp;
	long st = r->status;

	if (r->done || st / 100 == 1)
		return 1; /* trailers, or 100 Continue */
	if ((st == 301 || st == 302 || st == 303 || st == 307 || st == 308) &&
	    r->has_location) {
		/* libcurl follows it, if it may (its protocol list says the
		 * same; this is for a message that says why it may not). */
		snprintf(s->redirect_scheme, sizeof(s->redirect_scheme), "%s",
			 r->location_scheme);
		return url_redirect_allowed(s, r->location_scheme);
	}
	r->done = 1;
	return url_http_answer(s) == 0;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud)
{
	struct url_stream *s = ud;
	struct url_response *r = &s->resp;
	size_t n = size * nitems;
	const char *end = data + n, *v = data;

	if (!s->http)
		return n;
	now(&s->last_progress);
	if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
		parse_status(r, data, end);
	} else if (header_value(&v, end) == 0) {
		return headers_end(s) ? n : 0;
	} else if (is_header(data, n, "ETag", &v)) {
		copy_value(r->v.etag, sizeof(r->v.etag), v,
			   header_value(&v, end));
	} else if (is_header(data, n, "Last-Modified", &v)) {
		copy_value(r->v.last_modified, sizeof(r->v.last_modified), v,
			   header_value(&v, end));
	} else if (is_header(data, n, "Content-Range", &v)) {
		parse_content_range(r, v, header_value(&v, end));
	} else if (is_header(data, n, "Content-Length", &v)) {
		char tmp[32], *e;
		copy_value(tmp, sizeof(tmp), v, header_value(&v, end));
		uint64_t len = strtoull(tmp, &e, 10);
		if (e != tmp && *e == '\0')
			r->content_length = len;
	} else if (is_header(data, n, "Location", &v)) {
		r->has_location = 1;
		location_scheme(r->location_scheme, sizeof(r->location_scheme),
				v, header_value(&v, end));
	}
	return n;
}

/* The host and port of an ssh URL, for ssh-keyscan and ssh-keygen -R:
 * "[::1]" gives "::1"; no port means 22. */
static void ssh_host_port(const char *url, char *host, size_t cap, long *port)
{
	const char *h = strstr(url, "://"), *end, *colon;
	size_t auth, n;

	*port = 22;
	host[0] = '\0';
	if (!h)
		return;
	h += 3;
	auth = strcspn(h, "/?#");
	end = h + auth;
	/* bmaptk_redact removed "user:password@"; a bare "user@" stays. */
	for (const char *at; (at = memchr(h, '@', (size_t)(end - h)));)
		h = at + 1;
	if (*h == '[') {
		const char *close = memchr(h, ']', (size_t)(end - h));
		if (!close)
			return;
		n = (size_t)(close - h - 1);
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
		h++;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		n = (size_t)((colon ? colon : end) - h);
	}
	if (colon && colon + 1 < end)
		*port = strtol(colon + 1, NULL, 10);
	n = MIN(n, cap - 1);
	memcpy(host, h, n);
	host[n] = '\0';
}

/* Accept the SSH host key only if known_hosts has it: --insecure is about
 * TLS certificates and changes nothing here. */
static int on_hostkey(CURL *easy, const struct curl_khkey *known,
		      const struct curl_khkey *found, enum curl_khmatch match,
		      void *ud)
{
	struct url_stream *s = ud;
	char host[256], name[300];
	long port;

	(void)easy;
	(void)known;
	(void)found;
	if (match == CURLKHMATCH_OK)
		return CURLKHSTAT_FINE;
	ssh_host_port(s->shown, host, sizeof(host), &port);
	/* How known_hosts names the host (ssh-keyscan writes it so). */
	if (port == 22)
		snprintf(name, sizeof(name), "%s", host);
	else
		snprintf(name, sizeof(name), "[%s]:%ld", host, port);
	if (match == CURLKHMATCH_MISMATCH)
		snprintf(s->hostkey_problem, sizeof(s->hostkey_problem),
			 "the server's SSH host key differs from the one in "
			 "~/.ssh/known_hosts; if it changed on purpose, remove "
			 "the old one with \"ssh-keygen -R '%s'\" and add the "
			 "new one",
			 name);
	else
		snprintf(s->hostkey_problem, sizeof(s->hostkey_problem),
			 "the server's SSH host key is not in "
			 "~/.ssh/known_hosts; add it (after checking its "
			 "fingerprint) with \"ssh-keyscan -p %ld %s >> "
			 "~/.ssh/known_hosts\"%s",
			 port, host,
			 s->opts.insecure ? " (--insecure is about TLS "
					    "certificates only)"
					  : "");
	return CURLKHSTAT_REJECT;
}

static char *known_hosts_path(void)
{
	const char *home = getenv("HOME");
	struct passwd pwbuf, *pw = NULL;
	char buf[4096], *path;

	/* The _r form: a library must not clobber a caller's getpwuid(). */
	if (!home || !*home) {
		if (getpwuid_r(getuid(), &pwbuf, buf, sizeof(buf), &pw) != 0)
			pw = NULL;
		home = pw ? pw->pw_dir : "/";
	}
	if (asprintf(&path, "%s/.ssh/known_hosts", home) < 0)
		return NULL;
	return path;
}

#define SETOPT(opt, val)                                                       \
	do {                                                                   \
		if (!rc)                                                       \
			rc = curl_easy_setopt(s->easy, opt, val);              \
	} while (0)

static CURLcode set_tls(struct url_stream *s)
{
	CURLcode rc = CURLE_OK;
	char *known;

	if (s->opts.cacert)
		SETOPT(CURLOPT_CAINFO, s->opts.cacert);
	if (s->opts.insecure) {
		SETOPT(CURLOPT_SSL_VERIFYPEER, 0L);
		SETOPT(CURLOPT_SSL_VERIFYHOST, 0L);
		SETOPT(CURLOPT_PROXY_SSL_VERIFYPEER, 0L);
		SETOPT(CURLOPT_PROXY_SSL_VERIFYHOST, 0L);
	}
	/* SSH host keys are checked whatever --insecure says. */
	known = known_hosts_path();
	if (!known)
		return CURLE_OUT_OF_MEMORY;
	SETOPT(CURLOPT_SSH_KNOWNHOSTS, known);
	SETOPT(CURLOPT_SSH_KEYFUNCTION, on_hostkey);
	SETOPT(CURLOPT_SSH_KEYDATA, s);
	free(known); /* libcurl keeps a copy */
	return rc;
}

int url_curl_setup(struct url_stream *s, struct bmaptk_error *err)
{
	CURLcode rc = CURLE_OK;

	s->multi = curl_multi_init();
	s->easy = curl_easy_init();
	if (!s->multi || !s->easy)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
					"%s: cannot set up libcurl", s->shown);
	SETOPT(CURLOPT_URL, s->url);
	SETOPT(CURLOPT_ERRORBUFFER, s->errbuf);
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_WRITEFUNCTION, on_write);
	SETOPT(CURLOPT_WRITEDATA, s);
	SETOPT(CURLOPT_HEADERFUNCTION, on_header);
	SETOPT(CURLOPT_HEADERDATA, s);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https,ftp,ftps,sftp,scp,file");
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, s->redir_protocols);
	SETOPT(CURLOPT_FOLLOWLOCATION, 1L);
	SETOPT(CURLOPT_MAXREDIRS, 10L);
	SETOPT(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	SETOPT(CURLOPT_USERAGENT, "bmaptk/" BMAPTK_VERSION);
	SETOPT(CURLOPT_BUFFERSIZE, (long)URL_CURL_BUFFER);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_FILETIME, 1L);
	if (s->opts.timeout_sec > 0)
		SETOPT(CURLOPT_CONNECTTIMEOUT, (long)s->opts.timeout_sec);
	if (!rc)
		rc = set_tls(s);
	if (rc)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
					"%s: cannot set up libcurl: %s",
					s->shown, curl_easy_strerror(rc));
	return 0;
}

int url_transfer_start(struct url_stream *s, uint64_t from, uint64_t end,
		       int nobody, struct bmaptk_error *err)
{
	char range[64];
	CURLcode rc = CURLE_OK;
	CURLMcode mc;

	if (s->no_ranges || nobody)
		range[0] = '\0';
	else if (end == URL_OPEN_END)
		snprintf(range, sizeof(range), "%llu-",
			 (unsigned long long)from);
	else
		snprintf(range, sizeof(range), "%llu-%llu",
			 (unsigned long long)from,
			 (unsigned long long)(end - 1));
	SETOPT(CURLOPT_RANGE, range[0] ? range : NULL);
	SETOPT(CURLOPT_NOBODY, nobody ? 1L : 0L);
	/* Once the first answer is in, a part of the file is asked for only
	 * if it is still the same version: else the server sends 200. */
	SETOPT(CURLOPT_HTTPHEADER,
	       range[0] && s->answered ? s->if_range : NULL);
	if (rc)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
					"%s: libcurl: %s", s->shown,
					curl_easy_strerror(rc));
	reset_response(&s->resp);
	memset(&s->fail, 0, sizeof(s->fail));
	s->errbuf[0] = '\0';
	s->hostkey_problem[0] = '\0';
	s->redirect_scheme[0] = '\0';
	s->req_start = from;
	s->req_end = end;
	s->ranged = range[0] != '\0';
	s->xfer_pos = from;
	s->attempt_start = from;
	s->done = 0;
	s->paused = 0;
	s->nobody = nobody;
	s->result = CURLE_OK;
	mc = curl_multi_add_handle(s->multi, s->easy);
	if (mc)
		return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
					"%s: libcurl: %s", s->shown,
					curl_multi_strerror(mc));
	s->active = 1;
	return 0;
}

void url_transfer_stop(struct url_stream *s)
{
	if (s->active)
		curl_multi_remove_handle(s->multi, s->easy);
	s->active = 0;
	s->done = 0;
	s->paused = 0;
}

static void collect_done(struct url_stream *s)
{
	CURLMsg *m;
	int queued;

	while ((m = curl_multi_info_read(s->multi, &queued))) {
		if (m->msg == CURLMSG_DONE && m->easy_handle == s->easy) {
			s->done = 1;
			s->result = m->data.result;
		}
	}
}

static int enough(const struct url_stream *s, enum url_want want)
{
	switch (want) {
	case URL_WANT_DATA:
		return s->dst_got > 0 || s->len > 0;
	case URL_WANT_HEADERS:
		return s->resp.done && !s->fail.set;
	default:
		return 0;
	}
}

/* Drive the transfer until `want` is met or it ends (s->done). A stall
 * (no byte for timeout_sec while we wait) ends it as a retryable
 * failure; twice timeout_sec without a new byte, counted over every
 * retry, as a final one. Returns a status only for a libcurl malfunction
 * or an interruption (opts.interrupted, looked at every POLL_SLICE ms). */
int url_pump(struct url_stream *s, enum url_want want, struct bmaptk_error *err)
{
	double limit = s->opts.timeout_sec, budget = url_wait_budget(s);
	CURLMcode mc;
	int running, stop;

	now(&s->last_progress);
	now(&s->wait_mark);
	while (!s->done && !enough(s, want)) {
		double idle, left;
		if ((stop = url_interrupted(s, err)))
			return stop;
		if (s->paused) {
			CURLcode rc;
			s->paused = 0;
			rc = curl_easy_pause(s->easy, CURLPAUSE_CONT);
			if (rc) {
				if (!s->fail.set)
					url_fail(s, 0, 0,
						 "libcurl cannot resume: %s",
						 curl_easy_strerror(rc));
				s->done = 1;
				s->result = rc;
				break;
			}
			if (enough(s, want))
				break;
		}
		mc = curl_multi_perform(s->multi, &running);
		if (mc)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
						"%s: libcurl: %s", s->shown,
						curl_multi_strerror(mc));
		collect_done(s);
		count_wait(s);
		if (s->done || enough(s, want))
			break;
		if (budget > 0 && s->waited >= budget) {
			char why[BMAPTK_ERROR_MAX];
			url_waited_text(s, why, sizeof(why), 0);
			url_fail(s, 0, ETIMEDOUT, "%s: %s",
				 s->resp.done ? "the transfer stalled"
					      : "the server does not answer",
				 why);
			s->done = 1;
			s->result = CURLE_OPERATION_TIMEDOUT;
			break;
		}
		idle = since(&s->last_progress);
		if (limit > 0 && idle >= limit) {
			url_fail(s, s->answered, ETIMEDOUT,
				 "the transfer stalled (no data for %d s)",
				 s->opts.timeout_sec);
			s->done = 1;
			s->result = CURLE_OPERATION_TIMEDOUT;
			break;
		}
		left = POLL_SLICE / 1000.0;
		if (limit > 0)
			left = MIN(left, limit - idle);
		if (budget > 0)
			left = MIN(left, budget - s->waited);
		mc = curl_multi_poll(s->multi, NULL, 0,
				     (int)(MAX(left, 0.0) * 1000) + 1, NULL);
		if (mc)
			return bmaptk_set_error(err, BMAPTK_ERR_IO, 0,
						"%s: libcurl: %s", s->shown,
						curl_multi_strerror(mc));
	}
	return 0;
}

static const char *detail(struct url_stream *s)
{
	return s->errbuf[0] ? s->errbuf : curl_easy_strerror(s->result);
}

/* Fill s->fail from the finished transfer's result, unless a callback
 * already said why. */
void url_classify(struct url_stream *s)
{
	/* Network trouble after the server answered once is worth another
	 * try; before that (wrong host, nothing listening) it is not. */
	int again = s->answered;

	if (s->fail.set)
		return;
	switch (s->result) {
	case CURLE_OK:
		url_fail(s, 1, 0, "the transfer ended early");
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		url_fail(s, again, 0, "cannot resolve the host name: %s",
			 detail(s));
		break;
	case CURLE_COULDNT_CONNECT:
		url_fail(s, again, ECONNREFUSED, "cannot connect: %s",
			 detail(s));
		break;
	case CURLE_OPERATION_TIMEDOUT:
		url_fail(s, again, ETIMEDOUT, "%s: %s",
			 strncmp(s->errbuf, "Resolving", 9)
			     ? "timed out"
			     : "cannot resolve the host name",
			 detail(s));
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		if (s->hostkey_problem[0])
			url_fail(s, 0, 0,
				 "SSH host key verification failed: %s",
				 s->hostkey_problem);
		else
			url_fail(s, 0, 0,
				 "TLS certificate verification failed: %s",
				 detail(s));
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		/* After a redirect: libcurl's protocol list refused it (ours
		 * is the same, so headers_end should have). Say so, not
		 * just "Protocol not supported or disabled". */
		if (s->redirect_scheme[0])
			url_fail(
			    s, 0, 0,
			    "refusing the server's redirect from %s to %s: "
			    "%s",
			    s->scheme, s->redirect_scheme, detail(s));
		else
			url_fail(s, 0, 0, "%s", detail(s));
		break;
	case CURLE_SSL_CACERT_BADFILE:
		url_fail(s, 0, 0, "cannot use the CA certificates: %s",
			 detail(s));
		break;
	case CURLE_REMOTE_FILE_NOT_FOUND:
	case CURLE_FILE_COULDNT_READ_FILE:
		url_fail(s, 0, ENOENT, "not found: %s", detail(s));
		break;
	case CURLE_LOGIN_DENIED:
	case CURLE_REMOTE_ACCESS_DENIED:
		url_fail(s, 0, EACCES, "access denied: %s", detail(s));
		break;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSH:
		url_fail(s, again, ECONNRESET, "connection lost: %s",
			 detail(s));
		break;
	case CURLE_SSL_CONNECT_ERROR:
		url_fail(s, again, 0, "TLS handshake failed: %s", detail(s));
		break;
	default:
		url_fail(s, 0, 0, "%s", detail(s));
		break;
	}
}
