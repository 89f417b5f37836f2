/* Progress on stderr: a redrawn line on a terminal, one line per 10 % when
 * stderr is a file or pipe, nothing with -q. psplash gets "PROGRESS n".
 *
 * On a terminal the line fits its width (TIOCGWINSZ on stderr, re-read
 * after a SIGWINCH) less the last column, which wraps or is lost to the
 * erase on some terminals: as the width shrinks the bar goes first, then
 * the ETA, then the speed, then the label. A clock thread redraws the
 * line at least twice a second from the last counts, so that the speed
 * (over the last 5 s) and the ETA follow a stall or a long hole. Without
 * a known total there is no bar, percent or ETA: bytes and speed only. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bmaptool_log.h"
#include "cmd.h"
#include "events.h"
#include "util.h"

#define WINDOW	   5.0	      /* seconds the speed is measured over */
#define SAMPLE_GAP 0.2	      /* seconds between samples, and between redraws */
#define TICK_NS	   250000000L /* the clock thread's period */
#define BAR_MAX	   30
#define BAR_MIN	   10 /* a narrower bar says too little to be worth it */

/* Set by the SIGWINCH handler, read at the next draw. One progress runs
 * at a time. */
static volatile sig_atomic_t resized;

static void on_winch(int sig)
{
	(void)sig;
	resized = 1;
}

static int term_width(void)
{
	struct winsize ws;
	const char *env = getenv("COLUMNS");

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	/* Serial consoles often say 0 x 0. */
	if (env && atoi(env) > 0)
		return atoi(env);
	return 80;
}

static void refresh_width(struct cli_progress *p)
{
	if (resized) {
		resized = 0;
		p->width = term_width();
	}
}

static int known_total(uint64_t total)
{
	return total && total != BMAPTK_SIZE_UNKNOWN;
}

/* Under p->lock. */
static void sample(struct cli_progress *p, double now)
{
	unsigned last =
	    (p->next + CLI_PROGRESS_SAMPLES - 1) % CLI_PROGRESS_SAMPLES;

	if (p->nsamples && now - p->samples[last].t < SAMPLE_GAP)
		return;
	p->samples[p->next].t = now;
	p->samples[p->next].done = p->done;
	p->next = (p->next + 1) % CLI_PROGRESS_SAMPLES;
	if (p->nsamples < CLI_PROGRESS_SAMPLES)
		p->nsamples++;
}

/* Bytes a second since the oldest sample of the last WINDOW seconds. */
static double recent_rate(const struct cli_progress *p, double now)
{
	unsigned first = (p->next + CLI_PROGRESS_SAMPLES - p->nsamples) %
			 CLI_PROGRESS_SAMPLES;
	double t = p->started;
	uint64_t done = 0;

	for (unsigned i = 0; i < p->nsamples; i++) {
		unsigned k = (first + i) % CLI_PROGRESS_SAMPLES;
		t = p->samples[k].t;
		done = p->samples[k].done;
		if (now - t <= WINDOW)
			break;
	}
	if (now - t <= 0 || p->done < done)
		return 0;
	return (double)(p->done - done) / (now - t);
}

static void format_eta(double left, char *buf, size_t len)
{
	long s;

	buf[0] = 0;
	if (!(left >= 0 && left <= 99 * 3600.0)) /* no one waits on that */
		return;
	s = (long)(left + 0.5);
	if (s >= 3600)
		snprintf(buf, len, " ETA %ld:%02ld:%02ld", s / 3600,
			 s / 60 % 60, s % 60);
	else
		snprintf(buf, len, " ETA %ld:%02ld", s / 60, s % 60);
}

/* The bar's width when the numbers are their widest: "100%", done as
 * wide as "1023.9 MiB", the total, "1023.9 MiB/s" and "ETA 59:59". */
static size_t steady_bar(const struct cli_progress *p, const char *total,
			 int avail)
{
	size_t widest = strlen(p->what) + strlen(" [] 100% 1023.9 MiB/") +
			strlen(total) + strlen(" 1023.9 MiB/s ETA 59:59");

	if ((size_t)avail < widest + BAR_MIN)
		return 0;
	return (size_t)avail - widest > BAR_MAX ? BAR_MAX
						: (size_t)avail - widest;
}

/* The fullest line that fits in avail columns (all ASCII). */
static int compose(const struct cli_progress *p, double now, char *line,
		   size_t len, int avail)
{
	char done[32], total[32], rate[48], eta[48] = "", nums[96], pct[8];
	double r = recent_rate(p, now);
	int known = known_total(p->total);
	size_t what = strlen(p->what), n, room;

	human_size(p->done, done, sizeof(done));
	snprintf(rate, sizeof(rate), " %s/s",
		 human_size((uint64_t)r, total, sizeof(total)));
	if (known) {
		double frac = p->done >= p->total
				  ? 1.0
				  : (double)p->done / (double)p->total;
		snprintf(pct, sizeof(pct), "%3d%%", (int)(frac * 100));
		snprintf(nums, sizeof(nums), " %s %s/%s", pct, done,
			 human_size(p->total, total, sizeof(total)));
		if (r > 0 && p->total > p->done)
			format_eta((double)(p->total - p->done) / r, eta,
				   sizeof(eta));
	} else {
		pct[0] = 0;
		snprintf(nums, sizeof(nums), " %s", done);
	}
	if (avail < 0)
		avail = 0;
	if ((size_t)avail >= len)
		avail = (int)len - 1;
	n = what + strlen(nums);
	if (n <= (size_t)avail) {
		int with_rate = n + strlen(rate) <= (size_t)avail;
		int with_eta = with_rate &&
			       n + strlen(rate) + strlen(eta) <= (size_t)avail;
		size_t bar = 0, filled;

		n += (with_rate ? strlen(rate) : 0) +
		     (with_eta ? strlen(eta) : 0);
		room = (size_t)avail - n;
		/* " [" and "]"; as wide as the widest numbers of the run
		 * leave room for, so that it does not jitter with them. */
		if (known && room >= BAR_MIN + 3) {
			bar = steady_bar(p, total, avail);
			if (bar + 3 > room)
				bar = room - 3;
			if (bar < BAR_MIN)
				bar = 0;
		}
		filled = p->done >= p->total
			     ? bar
			     : (size_t)((double)bar * (double)p->done /
					(double)p->total);
		if (bar)
			return snprintf(
			    line, len, "%s [%.*s%*s]%s%s%s", p->what,
			    (int)filled, "##############################",
			    (int)(bar - filled), "", nums,
			    with_rate ? rate : "", with_eta ? eta : "");
		return snprintf(line, len, "%s%s%s%s", p->what, nums,
				with_rate ? rate : "", with_eta ? eta : "");
	}
	/* Narrower than the label and the numbers: the numbers alone, then
	 * the percent (or bytes) alone, then what fits of that. */
	if (strlen(nums + 1) <= (size_t)avail)
		return snprintf(line, len, "%s", nums + 1);
	return snprintf(line, len, "%.*s", avail, known ? pct : done);
}

/* Under p->lock. */
static void draw_bar(struct cli_progress *p, double now)
{
	char out[520];
	int n;

	refresh_width(p);
	/* One write, so that the terminal never shows half a line. */
	out[0] = '\r';
	n = compose(p, now, out + 1, sizeof(out) - 8, p->width - 1);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(out) - 9)
		n = (int)(sizeof(out) - 9);
	memcpy(out + 1 + n, "\033[K", 3);
	fwrite(out, 1, (size_t)n + 4, stderr);
	p->last_draw = now;
	p->drawn = p->done;
}

/* The clock: redraws the bar from the last counts, 4 times a second, from
 * the first count to the last byte. */
static void *tick(void *arg)
{
	struct cli_progress *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec ts;
		double now;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += TICK_NS;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->wake, &p->lock, &ts);
		if (p->stop)
			break;
		now = cli_now();
		sample(p, now);
		/* At 100 % the line stays as it was when the last byte came:
		 * a flush after it is no fall of the speed to 0. */
		if (p->updated && now - p->last_draw >= SAMPLE_GAP &&
		    !(known_total(p->total) && p->done >= p->total))
			draw_bar(p, now);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void start_clock(struct cli_progress *p)
{
	sigset_t all, old;

	/* The clock takes no signal but SIGWINCH: SIGINT and SIGTERM go to
	 * the threads that act on them. */
	sigfillset(&all);
	sigdelset(&all, SIGWINCH);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* Without the thread, the counts still redraw the bar. */
	p->ticking = pthread_create(&p->clock, NULL, tick, p) == 0;
	/* And SIGWINCH goes to the clock alone, waiting on its condition,
	 * not to this thread (nor those it starts now) in a read: blocked
	 * here until the end. */
	if (p->ticking && !sigismember(&old, SIGWINCH)) {
		sigaddset(&old, SIGWINCH);
		p->winch_blocked = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* psplash's pipe, and nothing else: a typo must not write "PROGRESS n"
 * over a file, the image or a disk's first sector. -1 after a warning. */
static int open_psplash(const char *path)
{
	struct stat st;
	int fd;

	if (stat(path, &st) == 0 && !S_ISFIFO(st.st_mode)) {
		cli_warn("%s: not a pipe; no progress for psplash", path);
		return -1;
	}
	/* Non-blocking: a missing psplash must not stall the copy. */
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && (fstat(fd, &st) || !S_ISFIFO(st.st_mode))) {
		close(fd);
		cli_warn("%s: not a pipe; no progress for psplash", path);
		return -1;
	}
	if (fd < 0)
		cli_warn("%s: cannot open the psplash pipe: %s", path,
			 strerror(errno));
	return fd;
}

void cli_progress_start(struct cli_progress *p, const char *what,
			const char *psplash_pipe)
{
	pthread_condattr_t ca;

	memset(p, 0, sizeof(*p));
	p->what = what;
	p->tty = isatty(STDERR_FILENO);
	p->last_step = -1;
	p->started = cli_now();
	p->psplash_fd = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (psplash_pipe) {
		/* Non-blocking: a missing psplash must not stall the copy. */
		p->psplash_fd = open_psplash(psplash_pipe);
	}
	if (!p->tty || cli.quiet || cli.json)
		return;
	/* The bar, or bmaptool's lines: both fit the width. SA_RESTART, so
	 * that a resize interrupts no read (SIGINT's and SIGTERM's do). */
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_winch;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		resized = 0;
		p->winch = sigaction(SIGWINCH, &sa, &p->old_winch) == 0;
	}
	p->width = term_width();
	p->bar = !cli.bmaptool;
	if (p->bar) {
		sample(p, p->started);
		start_clock(p);
	}
}

static void tell_psplash(struct cli_progress *p, int percent)
{
	char msg[32];
	int n;

	if (p->psplash_fd < 0)
		return;
	n = snprintf(msg, sizeof(msg), "PROGRESS %d", percent);
	/* psplash reads whole messages, NUL-terminated. */
	if (write(p->psplash_fd, msg, (size_t)n + 1) < 0 && errno == EPIPE)
		p->psplash_fd = -1;
}

/* bmaptool's line ("bmaptool: info: N% copied", or the wheel) keeps its
 * words; on a terminal too narrow for its widest ("100%"), none is drawn,
 * rather than lines that stop short of 100 %. */
static int bmaptool_fits(struct cli_progress *p)
{
	if (!p->tty)
		return 1; /* it draws nothing then anyway */
	refresh_width(p);
	if (!known_total(p->total))
		return p->width >= 1;
	return p->width >= (int)strlen("bmaptool: info: 100% copied");
}

void cli_progress_update(void *ctx, uint64_t done, uint64_t total)
{
	struct cli_progress *p = ctx;
	double now = cli_now();
	int percent = known_total(total) ? (int)(done * 100 / total) : 0;

	pthread_mutex_lock(&p->lock);
	p->done = done;
	p->total = total;
	p->updated = 1;
	if (percent != p->last_step)
		tell_psplash(p, percent);
	if (cli.json) {
		/* At most 4 a second, and the last one. */
		if (now - p->last_draw >= 0.25 || done == total) {
			json_t *f = json_object();
			double t = now - p->started;
			json_object_set_new(f, "what", json_string(p->what));
			json_object_set_new(f, "done",
					    json_integer((json_int_t)done));
			json_object_set_new(f, "total",
					    json_integer((json_int_t)total));
			json_object_set_new(
			    f, "rate", json_real(t > 0 ? (double)done / t : 0));
			ev_emit("progress", f);
			p->last_draw = now;
		}
		goto out;
	}
	if (cli.quiet)
		goto out;
	if (cli.bmaptool) {
		if (bmaptool_fits(p))
			bmaptool_log_progress(p, percent, now);
		goto out;
	}
	if (p->tty) {
		sample(p, now);
		if (now - p->last_draw >= SAMPLE_GAP || done == total)
			draw_bar(p, now);
	} else if (percent / 10 != p->last_step / 10 && percent / 10 > 0 &&
		   now - p->started >= 1.0) {
		/* Short jobs finish before a log line would help anyone. */
		char d[32], t[32];
		fprintf(stderr, "bmaptk: %s: %d%% (%s of %s)\n", p->what,
			percent / 10 * 10, human_size(done, d, sizeof(d)),
			human_size(total, t, sizeof(t)));
	}
out:
	p->last_step = percent;
	pthread_mutex_unlock(&p->lock);
}

void cli_progress_end(struct cli_progress *p)
{
	if (p->ticking) {
		pthread_mutex_lock(&p->lock);
		p->stop = 1;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->clock, NULL);
		p->ticking = 0;
	}
	if (p->bar && p->last_draw > 0) {
		/* The last counts, if the last draw missed them. */
		if (p->drawn != p->done)
			draw_bar(p, cli_now());
		fputc('\n', stderr);
	}
	/* The old handler first: a resize meanwhile is pending, for it. */
	if (p->winch)
		sigaction(SIGWINCH, &p->old_winch, NULL);
	p->winch = 0;
	if (p->winch_blocked) {
		sigset_t winch;

		sigemptyset(&winch);
		sigaddset(&winch, SIGWINCH);
		pthread_sigmask(SIG_UNBLOCK, &winch, NULL);
		p->winch_blocked = 0;
	}
	p->bar = 0;
	if (p->psplash_fd >= 0)
		close(p->psplash_fd);
	p->psplash_fd = -1;
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
}
