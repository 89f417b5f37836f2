/* gzip.c as a build without ISA-L compiles it (zlib), for
 * fuzz_codec_gzip_zlib; the module is renamed so that it does not clash
 * with the library's ISA-L one. */
#undef BMAPTK_HAVE_ISAL
#define bmaptk_codec_gzip bmaptk_codec_gzip_zlib
#include "../../src/codecs/gzip.c"
