// Not a scenario: run by `misuse_is_reported_and_foreign_frees_are_ignored` with one
// argument, the misuse to commit: `foreign` (free of memory HeapSweep never handed out:
// ignored, the program goes on), `double` (double free) or `interior` (free of a pointer
// into a block): both reported, and the process aborts.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    char *p = malloc(32);
    if (strcmp(argv[1], "foreign") == 0) {
        char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        static char in_data[64];
        free(m + 16);
        free(in_data);
        free(p);
        printf("still running\n");
        return 0;
    }
    if (strcmp(argv[1], "double") == 0) {
        free(p);
        free(p);
    } else if (strcmp(argv[1], "interior") == 0) {
        free(p + 8);
    }
    printf("not reached\n");
    return 0;
}
