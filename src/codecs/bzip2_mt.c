/* Parallel bzip2 decoding.
 *
 * bzip2 blocks are independent: each starts with a 48-bit magic at any bit
 * offset and carries its own CRC. A scanner thread reads the compressed
 * input, finds block boundaries at the bit level and copies every block
 * out as a standalone single-block stream ("BZh" level, the block's bits,
 * the end-of-stream magic and the block CRC as the stream CRC). Worker
 * threads decode these pieces into 512 KiB chunks, with bzip2_block.c or,
 * for what it refuses, libbz2; read() hands the chunks out in stream order
 * and checks each stream's combined CRC.
 *
 * A magic can also occur by chance inside compressed data. Such a false
 * split leaves a piece that fails to decode before producing any output,
 * so a piece that fails without output is joined with the next one and
 * decoded again (by read() itself); only when that cannot help is the data
 * corrupt.
 *
 * Memory is bounded by the pieces in flight (2 per worker) and a budget of
 * output chunks (CHUNKS_PER_WORKER per worker); the piece read() is
 * draining may always take HEAD_MAX_CHUNKS more, so nothing can deadlock.
 */
#include <bzlib.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bzip2_bits.h"
#include "bzip2_block.h"
#include "bzip2_mt.h"
#include "util.h"

#define READ_CHUNK	  (1u << 20) /* reads from the inner stream */
#define MAX_BLOCK_BYTES	  ((size_t)(BZIP2_MAX_BLOCK_BITS / 8) + 64)
#define CHUNK_SIZE	  (512u << 10)
#define CHUNKS_PER_WORKER 4
#define HEAD_MAX_CHUNKS	  2
#define MAX_WORKERS	  8 /* ~7 MB each; media write slower than 8 decode */
#define BZMEM_SLOTS	  4

struct chunk {
	struct chunk *next;
	size_t len;
	unsigned char data[];
};

enum piece_kind { PIECE_BLOCK, PIECE_EMPTY_STREAM };
enum piece_state { PIECE_QUEUED, PIECE_RUNNING, PIECE_DONE, PIECE_FAILED };

struct piece {
	struct piece *next;	/* stream order */
	struct piece *next_job; /* job queue */
	enum piece_kind kind;
	enum piece_state state;
	int cancelled;
	int sync; /* decoded by read() itself (a joined piece) */
	int oom;
	int level;
	unsigned char *wrapped; /* the block as a standalone stream */
	size_t wrapped_len;
	uint64_t start_bit, nbits; /* the block in the compressed input */
	uint32_t block_crc;
	int ends_stream; /* the stream's end-of-stream marker follows */
	uint32_t stream_crc;
	uint64_t eos_bit;
	struct chunk *out, *out_tail; /* decoded, not yet handed out */
	unsigned nout;
	uint64_t produced;
};

struct scanner {
	struct bmaptk_stream *inner;
	const char *name;
	unsigned char *win; /* compressed bytes [off, off + len) */
	size_t cap, len;
	uint64_t off;
	int eof;
	int in_stream;
	uint64_t bit; /* next block magic, or next stream header */
	int level;
	uint32_t fold; /* combined CRC of the stream's block headers */
	unsigned nstreams;
	int nsplit; /* false splits made in this block (tests) */
	struct bzip2_finder finder;
};

struct bz2mt;

struct bzmem {
	void *p;
	size_t size;
	int used;
};

struct worker {
	struct bz2mt *s;
	pthread_t tid;
	struct bzip2_block blk;
	struct bzmem mem[BZMEM_SLOTS]; /* libbz2's buffers, kept for reuse */
};

struct bz2mt {
	struct bmaptk_stream base;
	struct scanner sc;

	pthread_mutex_t lock;
	pthread_cond_t job_cv;	 /* jobs queued, stop */
	pthread_cond_t out_cv;	 /* output, piece finished, scanner news */
	pthread_cond_t space_cv; /* chunk released, head moved, cancel */
	pthread_cond_t scan_cv;	 /* a piece left the window */
	pthread_t scan_tid;
	int scan_started;
	struct worker workers[MAX_WORKERS];
	unsigned nworkers, nstarted;
	int stop;

	struct piece *head, *tail; /* in flight, in stream order */
	unsigned in_flight, max_in_flight;
	struct piece *jobs, *jobs_tail;
	int scan_done, scan_failed;
	struct bmaptk_error scan_err;

	struct chunk *pool;
	unsigned chunks_out, max_chunks;

	/* consumer side, touched only by read() */
	struct chunk *cur;
	size_t cur_off;
	bz_stream zc; /* decoding a joined piece */
	int zc_live;
	struct worker cw;
	uint32_t combined;
	int at_end, failed;
	struct bmaptk_error saved;
};

/* Tests set this to n to split every block at n false boundaries, which
 * real data produces too rarely to test otherwise. */
int bzip2_mt_test_false_splits;

/* ---- libbz2 allocation cache ------------------------------------------- */

/* Every piece libbz2 decodes is a new stream: reusing its ~4 MB of tables
 * per worker saves an mmap, page faults and munmap per block when a file
 * is full of blocks only libbz2 takes (randomised ones). */
static void *bz_alloc(void *opaque, int items, int size)
{
	struct worker *w = opaque;
	size_t n = (size_t)items * (size_t)size;
	struct bzmem *spare = NULL;

	for (int i = 0; i < BZMEM_SLOTS; i++) {
		struct bzmem *m = &w->mem[i];
		if (m->p && !m->used && m->size == n) {
			m->used = 1;
			return m->p;
		}
		if (!spare && (!m->p || !m->used))
			spare = m;
	}
	if (!spare)
		return malloc(n);
	free(spare->p);
	spare->p = malloc(n);
	spare->size = n;
	spare->used = spare->p != NULL;
	return spare->p;
}

static void bz_free(void *opaque, void *p)
{
	struct worker *w = opaque;

	for (int i = 0; i < BZMEM_SLOTS; i++) {
		if (w->mem[i].p == p) {
			w->mem[i].used = 0;
			return;
		}
	}
	free(p);
}

static void bzmem_release(struct worker *w)
{
	for (int i = 0; i < BZMEM_SLOTS; i++) {
		free(w->mem[i].p);
		w->mem[i].p = NULL;
	}
}

/* ---- pieces and chunks ------------------------------------------------- */

static void chunks_to_pool(struct bz2mt *s, struct chunk *c)
{
	while (c) {
		struct chunk *next = c->next;
		c->next = s->pool;
		s->pool = c;
		s->chunks_out--;
		c = next;
	}
}

/* Called with the lock held, or at close when no thread runs. */
static void piece_free(struct bz2mt *s, struct piece *p)
{
	chunks_to_pool(s, p->out);
	free(p->wrapped);
	free(p);
}

/* Build the standalone stream: header, one or two bit ranges, trailer. */
static int piece_wrap(struct piece *p, const unsigned char *a, uint64_t abit,
		      uint64_t an, const unsigned char *b, uint64_t bbit,
		      uint64_t bn)
{
	struct bzip2_bitwriter w = {0};
	size_t cap = 4 + (size_t)((an + bn) / 8) + 2 + 10 + BZIP2_PAD;

	w.buf = malloc(cap);
	if (!w.buf)
		return -1;
	bzip2_put_bits(&w, 0x425a68, 24); /* "BZh" */
	bzip2_put_bits(&w, (uint64_t)('0' + p->level), 8);
	bzip2_copy_bits(&w, a, abit, an);
	if (bn)
		bzip2_copy_bits(&w, b, bbit, bn);
	bzip2_put_bits(&w, BZIP2_EOS_MAGIC >> 24, 24);
	bzip2_put_bits(&w, BZIP2_EOS_MAGIC & 0xffffff, 24);
	/* A one-block stream's combined CRC is its block CRC. */
	bzip2_put_bits(&w, p->block_crc, 32);
	p->wrapped_len = bzip2_flush_bits(&w);
	memset(w.buf + p->wrapped_len, 0, cap - p->wrapped_len);
	p->wrapped = w.buf;
	return 0;
}

/* ---- the scanner ------------------------------------------------------- */

static int scan_corrupt(struct scanner *sc, struct bmaptk_error *err,
			uint64_t off, const char *why)
{
	return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0,
				BZIP2_CORRUPT_FMT " (%s)", sc->name,
				(unsigned long long)off, why);
}

static int scan_truncated(struct scanner *sc, struct bmaptk_error *err)
{
	return bmaptk_set_error(err, BMAPTK_ERR_USAGE, 0, BZIP2_TRUNCATED_FMT,
				sc->name,
				(unsigned long long)(sc->off + sc->len));
}

/* Make the window hold compressed bytes up to upto (or the end of input),
 * dropping what lies before keep. */
static int scan_fill(struct scanner *sc, uint64_t keep, uint64_t upto,
		     struct bmaptk_error *err)
{
	while (sc->off + sc->len < upto && !sc->eof) {
		ssize_t n;
		if (sc->cap - sc->len < READ_CHUNK) {
			size_t drop = (size_t)(keep - sc->off);
			memmove(sc->win, sc->win + drop, sc->len - drop);
			sc->off += drop;
			sc->len -= drop;
			if (sc->cap - sc->len < READ_CHUNK)
				return scan_corrupt(sc, err, keep,
						    "block too long");
		}
		n = stream_read_full(sc->inner, sc->win + sc->len, READ_CHUNK,
				     err);
		if (n < 0)
			return -1;
		if ((size_t)n < READ_CHUNK)
			sc->eof = 1;
		sc->len += (size_t)n;
		memset(sc->win + sc->len, 0, BZIP2_PAD);
	}
	return 0;
}

/* After the last stream: 1 if nothing but zero bytes follow (padding some
 * tools and devices add), 0 if something else does, -1 on error. */
static int scan_rest_is_zero(struct scanner *sc, uint64_t from,
			     struct bmaptk_error *err)
{
	for (;;) {
		uint64_t end = sc->off + sc->len;
		for (uint64_t i = from; i < end; i++)
			if (sc->win[i - sc->off])
				return 0;
		if (sc->eof)
			return 1;
		from = end;
		if (scan_fill(sc, end, end + 1, err))
			return -1;
	}
}

static int is_header(const unsigned char *p)
{
	return p[0] == 'B' && p[1] == 'Z' && p[2] == 'h' && p[3] >= '1' &&
	       p[3] <= '9';
}

static int is_header_prefix(const unsigned char *p, size_t n)
{
	static const char bzh[] = "BZh";

	for (size_t i = 0; i < n && i < 3; i++)
		if (p[i] != (unsigned char)bzh[i])
			return 0;
	return n < 4 || (p[3] >= '1' && p[3] <= '9');
}

/* Parse the stream header at sc->bit. Returns 1 when a stream starts, 0 at
 * the clean end of the input, -1 on error. */
static int scan_header(struct scanner *sc, struct bmaptk_error *err)
{
	uint64_t h = sc->bit / 8;
	size_t avail;
	const unsigned char *p;
	int zero;

	if (scan_fill(sc, h, h + 10, err))
		return -1;
	avail = (size_t)(sc->off + sc->len - h);
	p = sc->win + (h - sc->off);
	if (avail == 0 && sc->nstreams)
		return 0;
	if (avail < 10 && is_header_prefix(p, avail))
		return scan_truncated(sc, err), -1;
	if (avail >= 10 && is_header(p)) {
		if (!bzip2_magic_at(sc->win, (h + 4 - sc->off) * 8))
			return scan_corrupt(sc, err, h + 4, "bad block header"),
			       -1;
		sc->level = p[3] - '0';
		sc->nstreams++;
		sc->fold = 0;
		sc->bit = (h + 4) * 8;
		sc->in_stream = 1;
		return 1;
	}
	if (!sc->nstreams)
		return scan_corrupt(sc, err, h, "not bzip2 data"), -1;
	zero = scan_rest_is_zero(sc, h, err);
	if (zero < 0)
		return -1;
	if (zero)
		return 0;
	return scan_corrupt(sc, err, h, "garbage after the last stream"), -1;
}

/* Is the end-of-stream magic found at bit q real? Yes if the CRC after it
 * is the stream's combined CRC, or if the input ends or a new stream starts
 * right after it. Returns 1, 0, or -1 on error. */
static int scan_eos_valid(struct scanner *sc, uint64_t q, uint32_t fold,
			  struct bmaptk_error *err)
{
	uint64_t crc_end = q + 80, next = (crc_end + 7) / 8;
	size_t avail;

	if (scan_fill(sc, sc->bit / 8, next + 10, err))
		return -1;
	if ((sc->off + sc->len) * 8 < crc_end)
		return scan_truncated(sc, err), -1;
	if (bzip2_get_bits(sc->win, q - sc->off * 8 + 48, 32) == fold)
		return 1;
	avail = (size_t)(sc->off + sc->len - next);
	if (avail == 0)
		return 1;
	return avail >= 10 && is_header(sc->win + (next - sc->off)) &&
	       bzip2_magic_at(sc->win, (next + 4 - sc->off) * 8);
}

static struct piece *scan_new_piece(struct scanner *sc,
				    struct bmaptk_error *err)
{
	struct piece *p = calloc(1, sizeof(*p));

	if (!p)
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", sc->name);
	return p;
}

/* The stream ends at bit q: record its CRC, expect a header next. */
static void scan_end_stream(struct scanner *sc, struct piece *p, uint64_t q)
{
	p->ends_stream = 1;
	p->eos_bit = q;
	p->stream_crc =
	    (uint32_t)bzip2_get_bits(sc->win, q - sc->off * 8 + 48, 32);
	sc->bit = (q + 80 + 7) / 8 * 8;
	sc->in_stream = 0;
}

static struct piece *scan_empty_stream(struct scanner *sc,
				       struct bmaptk_error *err)
{
	struct piece *p;

	if (scan_fill(sc, sc->bit / 8, sc->bit / 8 + 10, err))
		return NULL;
	if ((sc->off + sc->len) * 8 < sc->bit + 80) {
		scan_truncated(sc, err);
		return NULL;
	}
	p = scan_new_piece(sc, err);
	if (!p)
		return NULL;
	p->kind = PIECE_EMPTY_STREAM;
	p->state = PIECE_DONE;
	scan_end_stream(sc, p, sc->bit);
	return p;
}

static int scan_found(struct scanner *sc, uint64_t a, uint64_t p, uint64_t *q,
		      enum bzip2_magic *which)
{
	*q = p;
	if (bzip2_mt_test_false_splits > sc->nsplit && p - a > 8192) {
		*q = a + (p - a) / 2;
		*which = BZIP2_BLOCK;
		sc->nsplit++;
	} else {
		sc->nsplit = 0;
	}
	return 0;
}

/* Find where the block at sc->bit ends: *q is the next real magic. */
static int scan_block_end(struct scanner *sc, uint64_t *q,
			  enum bzip2_magic *which, struct bmaptk_error *err)
{
	uint64_t a = sc->bit, from = a + 48;

	for (;;) {
		uint64_t base = sc->off * 8, end = (sc->off + sc->len) * 8;
		uint64_t p = bzip2_find_magic(&sc->finder, sc->win, from - base,
					      end - base, which);
		if (p != UINT64_MAX) {
			uint32_t crc;
			int v;
			p += base;
			if (p - a > BZIP2_MAX_BLOCK_BITS)
				break;
			if (*which == BZIP2_BLOCK)
				return scan_found(sc, a, p, q, which);
			crc = (uint32_t)bzip2_get_bits(sc->win, a - base + 48,
						       32);
			v = scan_eos_valid(sc, p, bzip2_crc_fold(sc->fold, crc),
					   err);
			if (v < 0)
				return -1;
			if (v)
				return scan_found(sc, a, p, q, which);
			from = p + 1;
			continue;
		}
		if (end - a > BZIP2_MAX_BLOCK_BITS + 48)
			break;
		if (sc->eof)
			return scan_truncated(sc, err), -1;
		from = MAX(from, end - 47);
		if (scan_fill(sc, a / 8, sc->off + sc->len + 1, err))
			return -1;
	}
	return scan_corrupt(sc, err, a / 8, "no end of block found"), -1;
}

static struct piece *scan_block(struct scanner *sc, struct bmaptk_error *err)
{
	uint64_t a = sc->bit, q, base;
	enum bzip2_magic which;
	struct piece *p;

	if (scan_block_end(sc, &q, &which, err))
		return NULL;
	p = scan_new_piece(sc, err);
	if (!p)
		return NULL;
	base = sc->off * 8;
	p->kind = PIECE_BLOCK;
	p->level = sc->level;
	p->start_bit = a;
	p->nbits = q - a;
	p->block_crc = (uint32_t)bzip2_get_bits(sc->win, a - base + 48, 32);
	if (piece_wrap(p, sc->win, a - base, q - a, NULL, 0, 0)) {
		free(p);
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", sc->name);
		return NULL;
	}
	sc->fold = bzip2_crc_fold(sc->fold, p->block_crc);
	if (which == BZIP2_BLOCK)
		sc->bit = q;
	else
		scan_end_stream(sc, p, q);
	return p;
}

/* The next piece, or NULL: at the clean end (*end set) or on error. */
static struct piece *scan_next(struct scanner *sc, int *end,
			       struct bmaptk_error *err)
{
	if (!sc->in_stream) {
		int r = scan_header(sc, err);
		if (r <= 0) {
			*end = r == 0;
			return NULL;
		}
		if (bzip2_magic_at(sc->win, sc->bit - sc->off * 8) == BZIP2_EOS)
			return scan_empty_stream(sc, err);
	}
	return scan_block(sc, err);
}

static void *scan_main(void *arg)
{
	struct bz2mt *s = arg;
	struct bmaptk_error err = {0};

	for (;;) {
		struct piece *p;
		int end = 0;

		pthread_mutex_lock(&s->lock);
		while (!s->stop && s->in_flight >= s->max_in_flight)
			pthread_cond_wait(&s->scan_cv, &s->lock);
		if (s->stop) {
			pthread_mutex_unlock(&s->lock);
			break;
		}
		pthread_mutex_unlock(&s->lock);

		p = scan_next(&s->sc, &end, &err);

		pthread_mutex_lock(&s->lock);
		if (!p) {
			s->scan_done = 1;
			if (!end) {
				s->scan_failed = 1;
				s->scan_err = err;
			}
			pthread_cond_broadcast(&s->out_cv);
			pthread_mutex_unlock(&s->lock);
			break;
		}
		if (s->tail)
			s->tail->next = p;
		else
			s->head = p;
		s->tail = p;
		s->in_flight++;
		if (p->kind == PIECE_BLOCK) {
			if (s->jobs_tail)
				s->jobs_tail->next_job = p;
			else
				s->jobs = p;
			s->jobs_tail = p;
			pthread_cond_signal(&s->job_cv);
		}
		pthread_cond_broadcast(&s->out_cv);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

/* ---- workers ----------------------------------------------------------- */

/* A chunk for p's output, waiting while the budget is spent. NULL when p
 * was cancelled, the stream is closing, or memory ran out (p->oom). */
static struct chunk *chunk_get(struct bz2mt *s, struct piece *p)
{
	struct chunk *c;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		if (s->stop || p->cancelled) {
			pthread_mutex_unlock(&s->lock);
			return NULL;
		}
		if (s->chunks_out < s->max_chunks ||
		    (p == s->head && p->nout < HEAD_MAX_CHUNKS))
			break;
		pthread_cond_wait(&s->space_cv, &s->lock);
	}
	c = s->pool;
	if (c)
		s->pool = c->next;
	s->chunks_out++;
	pthread_mutex_unlock(&s->lock);
	if (!c)
		c = malloc(sizeof(*c) + CHUNK_SIZE);
	if (!c) {
		pthread_mutex_lock(&s->lock);
		s->chunks_out--;
		p->oom = 1;
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	c->next = NULL;
	c->len = 0;
	return c;
}

static void chunk_put(struct bz2mt *s, struct chunk *c)
{
	pthread_mutex_lock(&s->lock);
	chunks_to_pool(s, c);
	pthread_cond_broadcast(&s->space_cv);
	pthread_mutex_unlock(&s->lock);
}

static void chunk_publish(struct bz2mt *s, struct piece *p, struct chunk *c)
{
	pthread_mutex_lock(&s->lock);
	if (p->out_tail)
		p->out_tail->next = c;
	else
		p->out = c;
	p->out_tail = c;
	p->nout++;
	pthread_cond_broadcast(&s->out_cv);
	pthread_mutex_unlock(&s->lock);
}

/* Decode p with libbz2 into published chunks. Returns 0 when the whole
 * stream decoded and its CRC matched. */
static int decode_piece_libbz2(struct bz2mt *s, struct worker *w,
			       struct piece *p)
{
	bz_stream z;
	struct chunk *c = NULL;
	int ret, rc = -1;

	memset(&z, 0, sizeof(z));
	z.bzalloc = bz_alloc;
	z.bzfree = bz_free;
	z.opaque = w;
	ret = BZ2_bzDecompressInit(&z, 0, 0);
	if (ret != BZ_OK) {
		p->oom = 1;
		return -1;
	}
	z.next_in = (char *)p->wrapped;
	z.avail_in = (unsigned)p->wrapped_len;
	for (;;) {
		if (!c && !(c = chunk_get(s, p)))
			break;
		z.next_out = (char *)c->data + c->len;
		z.avail_out = (unsigned)(CHUNK_SIZE - c->len);
		ret = BZ2_bzDecompress(&z);
		c->len = CHUNK_SIZE - z.avail_out;
		if (ret == BZ_STREAM_END) {
			rc = 0;
			break;
		}
		if (ret != BZ_OK) {
			p->oom = ret == BZ_MEM_ERROR;
			break;
		}
		if (c->len == CHUNK_SIZE) {
			chunk_publish(s, p, c);
			c = NULL;
		} else if (z.avail_in == 0) {
			break; /* libbz2 wants more: the block is cut short */
		}
	}
	p->produced = (uint64_t)z.total_out_hi32 << 32 | z.total_out_lo32;
	if (c && !rc && c->len)
		chunk_publish(s, p, c);
	else if (c)
		chunk_put(s, c);
	BZ2_bzDecompressEnd(&z);
	return rc;
}

/* Write out the block w->blk holds, then check its CRC. */
static int emit_piece(struct bz2mt *s, struct worker *w, struct piece *p)
{
	while (!bzip2_block_finished(&w->blk)) {
		struct chunk *c = chunk_get(s, p);
		size_t n;
		if (!c)
			return -1;
		n = bzip2_block_emit(&w->blk, c->data, CHUNK_SIZE);
		p->produced += n;
		if (!n) {
			chunk_put(s, c);
			break;
		}
		c->len = n;
		chunk_publish(s, p, c); /* c belongs to read() now */
	}
	return bzip2_block_check(&w->blk);
}

/* Our block decoder first; libbz2 for what it does not take (randomised
 * blocks), and to confirm a rejection before the piece counts as bad. */
static int decode_piece(struct bz2mt *s, struct worker *w, struct piece *p)
{
	int rc = bzip2_block_decode(&w->blk, p->wrapped, 32, p->nbits,
				    (unsigned)p->level);

	if (rc == BZIP2_BLOCK_OK)
		return emit_piece(s, w, p);
	if (rc == BZIP2_BLOCK_NOMEM) {
		p->oom = 1;
		return -1;
	}
	return decode_piece_libbz2(s, w, p);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bz2mt *s = w->s;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		struct piece *p;
		int rc;

		while (!s->stop && !s->jobs)
			pthread_cond_wait(&s->job_cv, &s->lock);
		if (s->stop)
			break;
		p = s->jobs;
		s->jobs = p->next_job;
		if (!s->jobs)
			s->jobs_tail = NULL;
		p->state = PIECE_RUNNING;
		pthread_mutex_unlock(&s->lock);

		rc = decode_piece(s, w, p);

		pthread_mutex_lock(&s->lock);
		p->state = rc ? PIECE_FAILED : PIECE_DONE;
		pthread_cond_broadcast(&s->out_cv);
	}
	pthread_mutex_unlock(&s->lock);
	bzmem_release(w);
	bzip2_block_free(&w->blk);
	return NULL;
}

/* ---- the consumer: ordered delivery (lock held) -------------------------- */

static int fail_corrupt(struct bz2mt *s, uint64_t bit, const char *why)
{
	return bmaptk_set_error(&s->saved, BMAPTK_ERR_USAGE, 0,
				BZIP2_CORRUPT_FMT " (%s)", s->base.name,
				(unsigned long long)(bit / 8), why);
}

static void pop_head(struct bz2mt *s)
{
	struct piece *p = s->head;

	s->head = p->next;
	if (!s->head)
		s->tail = NULL;
	piece_free(s, p);
	s->in_flight--;
	pthread_cond_signal(&s->scan_cv);
	pthread_cond_broadcast(&s->space_cv);
}

static void jobs_remove(struct bz2mt *s, struct piece *q)
{
	struct piece **pp = &s->jobs, *prev = NULL;

	while (*pp && *pp != q) {
		prev = *pp;
		pp = &(*pp)->next_job;
	}
	if (!*pp)
		return;
	*pp = q->next_job;
	if (s->jobs_tail == q)
		s->jobs_tail = prev;
}

/* The head piece failed without output, so it may end at a false magic:
 * join it with the next piece and decode the two again.
 * Returns 0 when done, 1 to wait, -1 when the data is corrupt. */
static int merge_head(struct bz2mt *s)
{
	struct piece *p = s->head, *q = p->next, *m;

	if (p->ends_stream)
		return fail_corrupt(s, p->start_bit, "bad block"), -1;
	if (!q)
		return s->scan_done
			   ? (fail_corrupt(s, p->start_bit, "bad block"), -1)
			   : 1;
	if (p->nbits + q->nbits > BZIP2_MAX_BLOCK_BITS ||
	    q->kind != PIECE_BLOCK)
		return fail_corrupt(s, p->start_bit, "bad block"), -1;
	if (q->state == PIECE_QUEUED) {
		jobs_remove(s, q);
		q->state = PIECE_FAILED;
	} else if (q->state == PIECE_RUNNING) {
		q->cancelled = 1;
		pthread_cond_broadcast(&s->space_cv);
		return 1;
	}
	m = calloc(1, sizeof(*m));
	if (m) {
		m->kind = PIECE_BLOCK;
		m->level = p->level;
		m->start_bit = p->start_bit;
		m->nbits = p->nbits + q->nbits;
		m->block_crc = p->block_crc;
		m->ends_stream = q->ends_stream;
		m->stream_crc = q->stream_crc;
		m->eos_bit = q->eos_bit;
	}
	if (!m ||
	    piece_wrap(m, p->wrapped, 32, p->nbits, q->wrapped, 32, q->nbits)) {
		free(m);
		return bmaptk_set_error(&s->saved, BMAPTK_ERR_IO, ENOMEM,
					"%s: out of memory", s->base.name),
		       -1;
	}
	m->next = q->next;
	if (s->tail == q)
		s->tail = m;
	s->head = m;
	piece_free(s, p);
	piece_free(s, q);
	s->in_flight--;
	/* Workers may all be waiting for output space held by later pieces,
	 * so read() decodes this one itself rather than queue it. */
	m->sync = 1;
	m->state = PIECE_RUNNING;
	pthread_cond_signal(&s->scan_cv);
	return 0;
}

/* A chunk outside the budget, for read()'s own decoding. */
static struct chunk *chunk_get_now(struct bz2mt *s)
{
	struct chunk *c;

	pthread_mutex_lock(&s->lock);
	c = s->pool;
	if (c)
		s->pool = c->next;
	s->chunks_out++;
	pthread_mutex_unlock(&s->lock);
	if (!c)
		c = malloc(sizeof(*c) + CHUNK_SIZE);
	if (!c) {
		pthread_mutex_lock(&s->lock);
		s->chunks_out--;
		pthread_mutex_unlock(&s->lock);
		return NULL;
	}
	c->next = NULL;
	c->len = 0;
	return c;
}

static void sync_finish(struct bz2mt *s, struct piece *p, int ok)
{
	p->produced =
	    (uint64_t)s->zc.total_out_hi32 << 32 | s->zc.total_out_lo32;
	BZ2_bzDecompressEnd(&s->zc);
	s->zc_live = 0;
	p->state = ok ? PIECE_DONE : PIECE_FAILED;
}

/* Decode the next chunk of a joined piece on read()'s thread, without the
 * lock (no other thread touches a sync piece). Returns 0 with s->cur set,
 * or 1 when the piece finished without more output. */
static int sync_step(struct bz2mt *s, struct piece *p)
{
	struct chunk *c;
	int ret;

	if (!s->zc_live) {
		memset(&s->zc, 0, sizeof(s->zc));
		s->zc.bzalloc = bz_alloc;
		s->zc.bzfree = bz_free;
		s->zc.opaque = &s->cw;
		if (BZ2_bzDecompressInit(&s->zc, 0, 0) != BZ_OK) {
			p->oom = 1;
			p->state = PIECE_FAILED;
			return 1;
		}
		s->zc.next_in = (char *)p->wrapped;
		s->zc.avail_in = (unsigned)p->wrapped_len;
		s->zc_live = 1;
	}
	c = chunk_get_now(s);
	if (!c) {
		p->oom = 1;
		sync_finish(s, p, 0);
		return 1;
	}
	for (;;) {
		s->zc.next_out = (char *)c->data + c->len;
		s->zc.avail_out = (unsigned)(CHUNK_SIZE - c->len);
		ret = BZ2_bzDecompress(&s->zc);
		c->len = CHUNK_SIZE - s->zc.avail_out;
		if (ret == BZ_STREAM_END) {
			sync_finish(s, p, 1);
			break;
		}
		if (ret != BZ_OK || (c->len < CHUNK_SIZE && !s->zc.avail_in)) {
			p->oom = ret == BZ_MEM_ERROR;
			sync_finish(s, p, 0);
			chunk_put(s, c);
			return 1;
		}
		if (c->len == CHUNK_SIZE)
			break;
	}
	if (!c->len) {
		chunk_put(s, c);
		return 1;
	}
	s->cur = c;
	return 0;
}

static int end_stream(struct bz2mt *s, struct piece *p)
{
	uint32_t combined = s->combined;

	s->combined = 0;
	if (combined != p->stream_crc)
		return fail_corrupt(s, p->eos_bit, "stream CRC mismatch"), -1;
	return 0;
}

/* Wait for the next chunk in stream order and make it s->cur. Returns 0,
 * 1 at the end of the data, -1 on error (s->saved set). */
static int next_chunk(struct bz2mt *s)
{
	for (;;) {
		struct piece *p = s->head;
		int r;

		if (!p) {
			if (!s->scan_done) {
				pthread_cond_wait(&s->out_cv, &s->lock);
				continue;
			}
			if (s->scan_failed) {
				s->saved = s->scan_err;
				return -1;
			}
			return 1;
		}
		if (p->sync && p->state == PIECE_RUNNING) {
			pthread_mutex_unlock(&s->lock);
			r = sync_step(s, p);
			pthread_mutex_lock(&s->lock);
			if (!r)
				return 0;
			continue;
		}
		if (p->out) {
			s->cur = p->out;
			p->out = s->cur->next;
			if (!p->out)
				p->out_tail = NULL;
			s->cur->next = NULL;
			p->nout--;
			pthread_cond_broadcast(&s->space_cv);
			return 0;
		}
		switch (p->state) {
		case PIECE_DONE:
			if (p->kind == PIECE_BLOCK)
				s->combined =
				    bzip2_crc_fold(s->combined, p->block_crc);
			if (p->ends_stream && end_stream(s, p))
				return -1;
			pop_head(s);
			continue;
		case PIECE_FAILED:
			if (p->oom)
				return bmaptk_set_error(
					   &s->saved, BMAPTK_ERR_IO, ENOMEM,
					   "%s: out of memory", s->base.name),
				       -1;
			if (p->produced)
				return fail_corrupt(s, p->start_bit,
						    "block CRC mismatch"),
				       -1;
			r = merge_head(s);
			if (r < 0)
				return -1;
			if (r == 0)
				continue;
			break;
		default:
			break;
		}
		pthread_cond_wait(&s->out_cv, &s->lock);
	}
}

/* ---- stream ops -------------------------------------------------------- */

static ssize_t mt_read(struct bmaptk_stream *bs, void *buf, size_t len,
		       struct bmaptk_error *err)
{
	struct bz2mt *s = (struct bz2mt *)bs;
	size_t done = 0;

	while (done < len) {
		int r;
		if (s->cur) {
			size_t n = MIN(len - done, s->cur->len - s->cur_off);
			memcpy((char *)buf + done, s->cur->data + s->cur_off,
			       n);
			done += n;
			s->cur_off += n;
			if (s->cur_off == s->cur->len) {
				chunk_put(s, s->cur);
				s->cur = NULL;
				s->cur_off = 0;
			}
			continue;
		}
		if (s->failed || s->at_end)
			break;
		pthread_mutex_lock(&s->lock);
		r = next_chunk(s);
		pthread_mutex_unlock(&s->lock);
		if (r < 0)
			s->failed = 1;
		else if (r > 0)
			s->at_end = 1;
	}
	if (done)
		return (ssize_t)done;
	if (s->failed) {
		if (err)
			*err = s->saved;
		return -1;
	}
	return 0;
}

static void mt_close(struct bmaptk_stream *bs)
{
	struct bz2mt *s = (struct bz2mt *)bs;

	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->job_cv);
	pthread_cond_broadcast(&s->space_cv);
	pthread_cond_broadcast(&s->scan_cv);
	pthread_mutex_unlock(&s->lock);
	if (s->scan_started)
		pthread_join(s->scan_tid, NULL);
	for (unsigned i = 0; i < s->nstarted; i++)
		pthread_join(s->workers[i].tid, NULL);
	while (s->head) {
		struct piece *p = s->head;
		s->head = p->next;
		piece_free(s, p);
	}
	if (s->cur)
		chunks_to_pool(s, s->cur);
	if (s->zc_live)
		BZ2_bzDecompressEnd(&s->zc);
	bzmem_release(&s->cw);
	while (s->pool) {
		struct chunk *c = s->pool;
		s->pool = c->next;
		free(c);
	}
	free(s->sc.win);
	s->sc.inner->ops->close(s->sc.inner);
	pthread_cond_destroy(&s->job_cv);
	pthread_cond_destroy(&s->out_cv);
	pthread_cond_destroy(&s->space_cv);
	pthread_cond_destroy(&s->scan_cv);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static const struct bmaptk_stream_ops mt_ops = {
    .read = mt_read,
    .close = mt_close,
};

static int start_threads(struct bz2mt *s, struct bmaptk_error *err)
{
	int e = pthread_create(&s->scan_tid, NULL, scan_main, s);

	if (e)
		goto fail;
	s->scan_started = 1;
	for (; s->nstarted < s->nworkers; s->nstarted++) {
		struct worker *w = &s->workers[s->nstarted];
		w->s = s;
		e = pthread_create(&w->tid, NULL, worker_main, w);
		if (e)
			goto fail;
	}
	return 0;
fail:
	return bmaptk_set_error(err, BMAPTK_ERR_IO, e,
				"%s: cannot start a thread: %s", s->base.name,
				strerror(e));
}

struct bmaptk_stream *bzip2_mt_open(struct bmaptk_stream *inner,
				    unsigned nworkers, struct bmaptk_error *err)
{
	struct bz2mt *s = calloc(1, sizeof(*s));

	if (s)
		s->sc.cap = MAX_BLOCK_BYTES + READ_CHUNK + 4096;
	if (s)
		s->sc.win = calloc(1, s->sc.cap + BZIP2_PAD);
	if (!s || !s->sc.win) {
		bmaptk_set_error(err, BMAPTK_ERR_IO, ENOMEM,
				 "%s: out of memory", inner->name);
		inner->ops->close(inner);
		free(s);
		return NULL;
	}
	s->base.ops = &mt_ops;
	s->base.name = inner->name;
	s->base.size = BMAPTK_SIZE_UNKNOWN;
	s->sc.inner = inner;
	s->sc.name = inner->name;
	bzip2_finder_init(&s->sc.finder);
	s->nworkers = MAX(1, MIN(nworkers, MAX_WORKERS));
	s->max_in_flight = 2 * s->nworkers;
	s->max_chunks = CHUNKS_PER_WORKER * s->nworkers;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->job_cv, NULL);
	pthread_cond_init(&s->out_cv, NULL);
	pthread_cond_init(&s->space_cv, NULL);
	pthread_cond_init(&s->scan_cv, NULL);
	if (start_threads(s, err)) {
		mt_close(&s->base);
		return NULL;
	}
	return &s->base;
}
