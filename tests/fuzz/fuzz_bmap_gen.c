/* Fuzz the bmap parser's semantic checks against a model of them.
 *
 * The input is not a document but the choices for one: version, sizes,
 * checksum type, ranges (usually sorted and disjoint, sometimes not),
 * digests, counts (usually right, sometimes off by one), spacing, and which
 * elements are left out. The harness writes that document with a correct
 * file checksum and knows, from BMAP-FORMAT.md, whether it must be
 * accepted. The parser must agree: a valid bmap refused or an invalid one
 * accepted is a finding, printed with the document. Accepted bmaps must
 * hold the generated values and pass fuzz_check_bmap(). */
#include <stdarg.h>
#include <string.h>

#include "fuzz_common.h"
#include "util.h"

#define NAME	   "gen.bmap"
#define MAX_RANGES 64

struct reader {
	const uint8_t *p;
	size_t left;
};

static unsigned byte(struct reader *r)
{
	if (!r->left)
		return 0;
	r->left--;
	return *r->p++;
}

static uint64_t bytes(struct reader *r, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | byte(r);
	return v;
}

/* 1 in `in` times, from the next byte. */
static int chance(struct reader *r, unsigned in)
{
	return byte(r) % in == 0;
}

struct gen {
	char version[8];
	unsigned major, minor;
	const char *hash_name; /* NULL: no <ChecksumType> */
	enum bmaptk_hash_type hash;
	uint64_t image_size, block_size, blocks_count, mapped;
	size_t n;
	uint64_t first[MAX_RANGES], last[MAX_RANGES];
	int single[MAX_RANGES]; /* written "X", not "X-X" */
	int digest[MAX_RANGES]; /* has a digest attribute */
	unsigned char dig[MAX_RANGES][BMAPTK_HASH_MAX];
	int file_digest; /* has the file checksum element */
	int valid;	 /* the model's verdict */
	const char *why; /* what makes it invalid */
};

static void invalid(struct gen *g, const char *why)
{
	if (g->valid)
		g->why = why;
	g->valid = 0;
}

static void gen_header(struct reader *r, struct gen *g)
{
	static const char *const versions[] = {"1.0", "1.1", "1.2", "1.3",
					       "1.4", "2.0", "3.0", "0.9"};
	static const char *const hashes[] = {"sha256", "sha256", "sha1", "md5"};
	unsigned v = byte(r) % 8, e;
	int modern;

	snprintf(g->version, sizeof(g->version), "%s", versions[v]);
	g->major = (unsigned)(g->version[0] - '0');
	g->minor = (unsigned)(g->version[2] - '0');
	if (g->major > 2 || g->major < 1)
		invalid(g, "version");
	modern = g->major > 1 || g->minor >= 4;
	g->hash = BMAPTK_HASH_SHA1;
	if (modern) {
		g->hash_name = hashes[byte(r) % 4];
		if (!strcmp(g->hash_name, "sha256"))
			g->hash = BMAPTK_HASH_SHA256;
		else if (strcmp(g->hash_name, "sha1"))
			invalid(g, "checksum type");
		if (chance(r, 32)) {
			g->hash_name = NULL;
			invalid(g, "no checksum type");
		}
	} else if (chance(r, 32)) {
		g->hash_name = "sha1";
		invalid(g, "checksum type before 1.4");
	}
	g->file_digest = modern || g->minor >= 3 || chance(r, 2);
	if (chance(r, 32) && g->file_digest) {
		g->file_digest = 0;
		if (modern || g->minor >= 3)
			invalid(g, "no file checksum");
	}
	e = byte(r);
	g->block_size = e & 0x80 ? bytes(r, 2) : UINT64_C(1) << (e % 34);
	if (!g->block_size || g->block_size > (1u << 30) ||
	    (g->block_size & (g->block_size - 1)))
		invalid(g, "block size");
	g->image_size = chance(r, 8) ? bytes(r, 8) : bytes(r, 3);
	if (g->image_size > (UINT64_C(1) << 62))
		invalid(g, "image size");
}

static void gen_ranges(struct reader *r, struct gen *g)
{
	uint64_t next = 0, sum = 0;
	int digests = byte(r) & 1;

	g->blocks_count = g->block_size
			      ? g->image_size / g->block_size +
				    (g->image_size % g->block_size != 0)
			      : 0;
	if (chance(r, 16)) {
		g->blocks_count += chance(r, 2) ? 1 : UINT64_MAX;
		invalid(g, "blocks count");
	}
	g->n = byte(r) % (MAX_RANGES + 1);
	for (size_t i = 0; i < g->n; i++) {
		uint64_t len = byte(r) % 5;
		g->first[i] = next + byte(r) % 4;
		if (chance(r, 24) && i) {
			g->first[i] = g->last[i - 1] - (byte(r) % 2);
			invalid(g, "overlap or order");
		}
		g->last[i] = g->first[i] + len;
		if (chance(r, 48)) {
			uint64_t t = g->first[i];
			g->first[i] = g->last[i] + 1;
			g->last[i] = t;
			invalid(g, "reversed range");
		}
		if (g->last[i] >= g->blocks_count || g->first[i] > g->last[i] ||
		    g->last[i] < g->first[i])
			invalid(g, "range outside or reversed");
		g->single[i] = g->first[i] == g->last[i] && byte(r) & 1;
		g->digest[i] = digests;
		if (chance(r, 64))
			g->digest[i] = !digests;
		if (g->digest[i] != g->digest[0])
			invalid(g, "mixed digests");
		for (size_t k = 0; k < bmaptk_hash_size(g->hash); k++)
			g->dig[i][k] = (unsigned char)byte(r);
		next = g->last[i] + 1;
		sum += g->last[i] - g->first[i] + 1;
	}
	g->mapped = sum;
	if (chance(r, 16)) {
		g->mapped += chance(r, 2) ? 1 : UINT64_MAX;
		invalid(g, "mapped blocks count");
	}
}

struct text {
	char *buf;
	size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	FUZZ_CHECK(n >= 0 && (size_t)n < t->cap - t->len, "document full");
	t->len += (size_t)n;
}

/* The document, with the file checksum filled in; malloc'd. */
static char *write_doc(const struct gen *g, struct reader *r, size_t *len)
{
	struct text t = {.cap = 64 * 1024};
	const int modern = g->major > 1 || g->minor >= 4;
	const size_t dlen = bmaptk_hash_size(g->hash);
	const char *sp = byte(r) & 1 ? " " : "";
	char hex[2 * BMAPTK_HASH_MAX + 1];
	unsigned char digest[BMAPTK_HASH_MAX];
	size_t at = 0;

	t.buf = malloc(t.cap);
	FUZZ_CHECK(t.buf, "out of memory");
	put(&t, "<?xml version=\"1.0\" ?>\n<bmap version=\"%s\">\n",
	    g->version);
	put(&t, "<ImageSize>%s%llu%s</ImageSize>\n", sp,
	    (unsigned long long)g->image_size, sp);
	put(&t, "<BlockSize>%llu</BlockSize>\n",
	    (unsigned long long)g->block_size);
	put(&t, "<BlocksCount> %llu </BlocksCount>\n",
	    (unsigned long long)g->blocks_count);
	put(&t, "<MappedBlocksCount>%llu</MappedBlocksCount>\n",
	    (unsigned long long)g->mapped);
	if (g->hash_name)
		put(&t, "<ChecksumType>%s%s%s</ChecksumType>\n", sp,
		    g->hash_name, sp);
	if (g->file_digest) {
		put(&t, "<%s>%s", modern ? "BmapFileChecksum" : "BmapFileSHA1",
		    sp);
		at = t.len;
		memset(hex, '0', 2 * dlen);
		hex[2 * dlen] = '\0';
		put(&t, "%s%s</%s>\n", hex, sp,
		    modern ? "BmapFileChecksum" : "BmapFileSHA1");
	}
	put(&t, "<BlockMap>\n");
	for (size_t i = 0; i < g->n; i++) {
		put(&t, "<Range");
		if (g->digest[i]) {
			bmaptk_hex(g->dig[i], dlen, hex);
			put(&t, " %s=\"%s\"", modern ? "chksum" : "sha1", hex);
		}
		if (g->single[i])
			put(&t, ">%s%llu%s</Range>\n", sp,
			    (unsigned long long)g->first[i], sp);
		else
			put(&t, ">%llu%s-%s%llu</Range>\n",
			    (unsigned long long)g->first[i], sp, sp,
			    (unsigned long long)g->last[i]);
	}
	put(&t, "</BlockMap>\n</bmap>\n");
	if (g->file_digest) {
		struct bmaptk_hasher *h = bmaptk_hasher_new(g->hash);
		FUZZ_CHECK(h, "out of memory");
		bmaptk_hasher_update(h, t.buf, t.len);
		bmaptk_hasher_final(h, digest);
		bmaptk_hasher_free(h);
		bmaptk_hex(digest, dlen, hex);
		memcpy(t.buf + at, hex, 2 * dlen);
	}
	*len = t.len;
	return t.buf;
}

static void check_values(const struct gen *g, const struct bmaptk_bmap *b)
{
	FUZZ_CHECK(b->major == g->major && b->minor == g->minor &&
		       b->image_size == g->image_size &&
		       b->block_size == g->block_size &&
		       b->blocks_count == g->blocks_count &&
		       b->mapped_blocks_count == g->mapped &&
		       b->hash_type == g->hash && b->nranges == g->n &&
		       b->range_digests == (g->n ? g->digest[0] : 0),
		   "parsed header differs from the document");
	for (size_t i = 0; i < g->n; i++)
		FUZZ_CHECK(b->ranges[i].first == g->first[i] &&
			       b->ranges[i].last == g->last[i] &&
			       (!g->digest[i] ||
				!memcmp(b->ranges[i].digest, g->dig[i],
					bmaptk_hash_size(g->hash))),
			   "range %zu differs from the document", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct reader r = {data, len};
	struct gen *g = calloc(1, sizeof(*g));
	struct bmaptk_error err = {0};
	struct bmaptk_bmap *b;
	size_t doclen;
	char *doc;
	int rc;

	FUZZ_CHECK(g, "out of memory");
	g->valid = 1;
	gen_header(&r, g);
	gen_ranges(&r, g);
	doc = write_doc(g, &r, &doclen);
	rc = bmaptk_bmap_parse(doc, doclen, NAME, &b, &err);
	FUZZ_CHECK((rc == 0) == g->valid,
		   "the model says %s (%s), the parser returned %d (%s) for:\n"
		   "%.*s",
		   g->valid ? "valid" : "invalid", g->valid ? "" : g->why, rc,
		   err.message, (int)doclen, doc);
	if (rc) {
		fuzz_check_error(&err, "bmaptk_bmap_parse");
		FUZZ_CHECK(strstr(err.message, NAME),
			   "message does not name the file: %s", err.message);
	} else {
		check_values(g, b);
		fuzz_check_bmap(b);
		bmaptk_bmap_free(b);
	}
	free(doc);
	free(g);
	return 0;
}
