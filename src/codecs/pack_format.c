#include <string.h>

#include "pack_format.h"

const char *pack_header_get(const unsigned char *p, uint64_t payload_len,
			    struct pack_header *h)
{
	uint64_t want;

	if (payload_len < PACK_HEADER_SIZE || memcmp(p, PACK_TAG, 8))
		return "not a bmaptk pack header";
	h->version = pack_get32(p + 8);
	h->chunk_size = pack_get32(p + 12);
	h->image_size = pack_get64(p + 16);
	h->nchunks = pack_get32(p + 24);
	h->bmap_len = pack_get32(p + 28);
	h->sig_len = pack_get32(p + 32);
	h->flags = pack_get32(p + 36);
	if (h->version != PACK_VERSION)
		return "unsupported pack version (newer bmaptk?)";
	if (h->flags)
		return "unknown pack flags (newer bmaptk?)";
	if (h->chunk_size < PACK_CHUNK_MIN || h->chunk_size > PACK_CHUNK_MAX ||
	    h->chunk_size % 4096)
		return "chunk size out of range";
	if (h->image_size > (uint64_t)PACK_MAX_CHUNKS * PACK_CHUNK_MAX)
		return "image size out of range";
	if (h->nchunks > PACK_MAX_CHUNKS ||
	    h->nchunks != (h->image_size + h->chunk_size - 1) / h->chunk_size)
		return "chunk count does not match the image size";
	if (!h->bmap_len)
		return "no bmap in the pack";
	want = PACK_HEADER_SIZE + 4ull * h->nchunks + h->bmap_len + h->sig_len;
	if (want != payload_len)
		return "the bmap frame's sizes do not add up";
	return NULL;
}
