/* Progress on stderr: a redrawn bar on a terminal, one line per 10 % when
 * stderr is a file or pipe, nothing with -q. psplash gets "PROGRESS n". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bmaptool_log.h"
#include "cmd.h"
#include "events.h"
#include "util.h"

void cli_progress_start(struct cli_progress *p, const char *what,
			const char *psplash_pipe)
{
	memset(p, 0, sizeof(*p));
	p->what = what;
	p->tty = isatty(STDERR_FILENO);
	p->last_step = -1;
	p->started = cli_now();
	p->psplash_fd = -1;
	if (psplash_pipe) {
		/* Non-blocking: a missing psplash must not stall the copy. */
		p->psplash_fd =
		    open(psplash_pipe, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (p->psplash_fd < 0)
			cli_warn("%s: cannot open the psplash pipe: %s",
				 psplash_pipe, strerror(errno));
	}
}

static void draw_bar(struct cli_progress *p, double now)
{
	double elapsed = now - p->started;
	double rate = elapsed > 0 ? (double)p->done / elapsed : 0;
	double frac = p->total ? (double)p->done / (double)p->total : 0;
	char done[32], total[32], speed[32], eta[32] = "";
	int width = 30, filled = (int)(frac * width);

	if (rate > 0 && p->total > p->done) {
		double left = (double)(p->total - p->done) / rate;
		snprintf(eta, sizeof(eta), " ETA %d:%02d", (int)left / 60,
			 (int)left % 60);
	}
	fprintf(stderr, "\r%s [%.*s%*s] %3d%% %s/%s %s/s%s\033[K", p->what,
		filled, "##############################", width - filled, "",
		(int)(frac * 100), human_size(p->done, done, sizeof(done)),
		human_size(p->total, total, sizeof(total)),
		human_size((uint64_t)rate, speed, sizeof(speed)), eta);
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

void cli_progress_update(void *ctx, uint64_t done, uint64_t total)
{
	struct cli_progress *p = ctx;
	double now = cli_now();
	int percent = total ? (int)(done * 100 / total) : 0;

	p->done = done;
	p->total = total;
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
		bmaptool_log_progress(p, percent, now);
		goto out;
	}
	if (p->tty) {
		if (now - p->last_draw >= 0.2 || done == total) {
			draw_bar(p, now);
			p->last_draw = now;
		}
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
}

void cli_progress_end(struct cli_progress *p)
{
	if (p->tty && !cli.quiet && !cli.json && !cli.bmaptool &&
	    p->last_draw > 0)
		fputc('\n', stderr);
	if (p->psplash_fd >= 0)
		close(p->psplash_fd);
	p->psplash_fd = -1;
}
