#include "cmd.h"

static int run(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_error("copy: not implemented yet");
	return 2;
}

const struct cmd cmd_copy = {
	.name = "copy",
	.summary = "(not implemented yet)",
	.usage = "",
	.description = "",
	.options = NULL,
	.run = run,
};
