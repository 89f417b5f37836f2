/* Fuzz the codecs: every codec's probe on every short prefix, then the
 * input opened as an image and read to its end.
 *
 * Built twice over: fuzz_image goes through bmaptk_open_image() (probe
 * and pick, codec chains, the "looks like" refusals); fuzz_codec_NAME
 * (FUZZ_CODEC="NAME") hands the input straight to one codec's open, so the
 * fuzzer spends no time finding the magic; fuzz_codec_gzip_zlib does the
 * same with gzip.c built for zlib (FUZZ_CODEC_SYMBOL), the fallback of
 * builds without ISA-L. Errors are fine; crashes, leaks,
 * hangs, a read returning more than asked, a stream giving another size
 * than it announced, or a failure without a message are not. */
#include <string.h>

#include "fuzz_common.h"
#include "util.h"

/* Tests only: nonzero splits bzip2 blocks at false boundaries. */
extern int bzip2_mt_test_false_splits;

/* Probes may look at head[0, head_len) only: give each a buffer of
 * exactly that size, so ASan sees a read past it. */
static void probe_prefixes(const struct bmaptk_registry *reg,
			   const uint8_t *data, size_t len)
{
	const struct bmaptk_module *m;
	size_t max = MIN(len, 64);

	for (size_t k = 0; k <= max; k++) {
		unsigned char *head = malloc(k ? k : 1);
		FUZZ_CHECK(head, "out of memory");
		memcpy(head, data, k);
		for (size_t i = 0; (m = bmaptk_registry_get(reg, i, NULL)); i++)
			if (m->kind == BMAPTK_MODULE_CODEC)
				(void)m->u.codec->probe(head, k);
		free(head);
	}
}

/* Both bzip2 decoders: streaming (0) and block-parallel (1 or 2 threads),
 * sometimes with the false-split test mode. */
static void choose_bzip2(uint64_t h)
{
	static const char *const threads[] = {"0", "1", "2", "2"};

	setenv("BMAPTK_BZIP2_THREADS", threads[h & 3], 1);
	bzip2_mt_test_false_splits = ((h >> 2) & 7) == 0;
}

#if defined(FUZZ_CODEC_SYMBOL)
/* A codec compiled into the harness itself: gzip.c with zlib, which the
 * library does not use when it has ISA-L. */
extern const struct bmaptk_module FUZZ_CODEC_SYMBOL;

static struct bmaptk_stream *open_input(const struct bmaptk_registry *reg,
					const uint8_t *data, size_t len,
					const struct fuzz_mem_opts *o,
					struct bmaptk_error *err)
{
	const struct bmaptk_codec_module *c = FUZZ_CODEC_SYMBOL.u.codec;

	(void)reg;
	(void)c->probe(data, MIN(len, 4096));
	return c->open(fuzz_mem_stream(data, len, o), err);
}
#elif defined(FUZZ_CODEC)
static struct bmaptk_stream *open_input(const struct bmaptk_registry *reg,
					const uint8_t *data, size_t len,
					const struct fuzz_mem_opts *o,
					struct bmaptk_error *err)
{
	static const struct bmaptk_module *codec;
	const struct bmaptk_module *m;

	for (size_t i = 0; !codec && (m = bmaptk_registry_get(reg, i, NULL));
	     i++)
		if (m->kind == BMAPTK_MODULE_CODEC &&
		    !strcmp(m->name, FUZZ_CODEC))
			codec = m;
	FUZZ_CHECK(codec, "no codec named %s", FUZZ_CODEC);
	return codec->u.codec->open(fuzz_mem_stream(data, len, o), err);
}
#else
static struct bmaptk_stream *open_input(const struct bmaptk_registry *reg,
					const uint8_t *data, size_t len,
					const struct fuzz_mem_opts *o,
					struct bmaptk_error *err)
{
	fuzz_mem_set(data, len, o);
	return bmaptk_open_image(reg, FUZZ_MEM_LOCATION, NULL, err);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct bmaptk_registry *reg;
	struct bmaptk_error err = {0};
	struct fuzz_mem_opts o;
	struct bmaptk_stream *s;
	uint64_t h = fuzz_hash(data, len);

	if (!reg)
		reg = fuzz_registry();
	probe_prefixes(reg, data, len);
	fuzz_mem_opts_from(h, len, &o);
	choose_bzip2(h >> 16);
	s = open_input(reg, data, len, &o, &err);
	if (!s) {
		fuzz_check_error(&err, "open");
		return 0;
	}
	FUZZ_CHECK(s->ops && s->ops->read && s->ops->close,
		   "stream without read or close");
	fuzz_drain(s, h >> 24, &err);
	return 0;
}
