// Not a scenario: copies a line of stdin to stdout, writes one line to stderr, and exits
// with the status its argument names; `heapsweep run` must pass all of it through.
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    char line[256];
    if (fgets(line, sizeof line, stdin) != NULL)
        fputs(line, stdout);
    fprintf(stderr, "to stderr\n");
    return argc > 1 ? atoi(argv[1]) : 0;
}
