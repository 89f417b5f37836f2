/* bmaptk pack: placeholder until the packer lands. */
#include "cmd.h"

static int run(int argc, char **argv)
{
	(void)argc, (void)argv;
	cli_error("pack: not implemented yet");
	return BMAPTK_ERR_USAGE;
}

static const struct cli_option options[] = {{0}};

const struct cmd cmd_pack = {
    .name = "pack",
    .summary = "write a seekable zstd image that carries its bmap",
    .usage = "IMAGE",
    .description = "Not implemented yet.",
    .options = options,
    .run = run,
};
