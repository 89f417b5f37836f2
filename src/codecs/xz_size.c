/* The uncompressed size of a local xz file: liblzma's file info decoder
 * reads the stream headers, footers and indexes, seeking from the end of
 * the file, without decoding any block. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lzma.h>

#include <bmaptk/module.h>

#include "xz_size.h"

#define CHUNK (64u << 10)
/* The indexes of a file with very many blocks can be large; past this, the
 * size is left unknown. */
#define MEMLIMIT (64ull << 20)

uint64_t bmaptk_xz_size(const char *path)
{
	lzma_stream strm = LZMA_STREAM_INIT;
	lzma_index *idx = NULL;
	uint64_t size = BMAPTK_SIZE_UNKNOWN, pos = 0;
	unsigned char *buf = NULL;
	struct stat st;
	int fd;

	if (!strcmp(path, "-") || strstr(path, "://"))
		return BMAPTK_SIZE_UNKNOWN;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return BMAPTK_SIZE_UNKNOWN;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || !(buf = malloc(CHUNK)) ||
	    lzma_file_info_decoder(&strm, &idx, MEMLIMIT,
				   (uint64_t)st.st_size) != LZMA_OK)
		goto out;
	for (;;) {
		lzma_ret ret;

		if (strm.avail_in == 0) {
			ssize_t n = pread(fd, buf, CHUNK, (off_t)pos);
			if (n <= 0) /* an error, or the file shrank */
				break;
			strm.next_in = buf;
			strm.avail_in = (size_t)n;
			pos += (uint64_t)n;
		}
		ret = lzma_code(&strm, LZMA_RUN);
		if (ret == LZMA_SEEK_NEEDED) {
			pos = strm.seek_pos;
			strm.avail_in = 0;
		} else if (ret == LZMA_STREAM_END) {
			if (idx)
				size = lzma_index_uncompressed_size(idx);
			break;
		} else if (ret != LZMA_OK) {
			break;
		}
	}
out:
	lzma_end(&strm);
	if (idx)
		lzma_index_end(idx, NULL);
	free(buf);
	close(fd);
	return size;
}
