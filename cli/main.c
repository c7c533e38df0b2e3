/* main.c - the `interp-pool` command: dispatch to its subcommands. See cli/README.md. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
    "Usage: interp-pool COMMAND [ARGS...]\n"
    "\n"
    "Run Lua code in parallel on a pool of isolated Lua 5.4 states.\n"
    "\n"
    "Commands:\n"
    "  map SCRIPT FUNC [OPTIONS]   call FUNC of SCRIPT on every line of stdin, in parallel;\n"
    "                              results on stdout in input order\n"
    "  run SCRIPT [ARGS...]        run a Lua script with require \"interp_pool\" available\n"
    "  help [COMMAND]              print this help, or a command's\n"
    "\n"
    "Options:\n"
    "  -h, --help                  print this help\n"
    "  --version                   print the version\n"
    "\n"
    "'interp-pool COMMAND --help' describes each command.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "map") == 0)
        return cli_mpi_end(cli_map(argc - 1, argv + 1));
    if (strcmp(cmd, "run") == 0)
        return cli_run(argc - 1, argv + 1);
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        if (argc >= 3 && strcmp(cmd, "help") == 0) {
            char help[] = "--help";
            char *sub[] = {argv[2], help, NULL};
            if (strcmp(argv[2], "map") == 0)
                return cli_map(2, sub);
            if (strcmp(argv[2], "run") == 0)
                return cli_run(2, sub);
            fprintf(stderr, "interp-pool: no command '%s'\n", argv[2]);
            return CLI_EXIT_USAGE;
        }
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("interp-pool %s\n", interp_pool_version());
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "interp-pool: unknown command '%s'\nTry 'interp-pool --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}
