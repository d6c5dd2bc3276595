//! Test that fork and exec work under LD_PRELOAD: a forked child and an exec'd image are each checked at their own exit, with their own leaks; the parent reports only its own.
//!
// EXPECT: leaked_blocks=1 leaked_bytes=7 direct_blocks=1
// EXPECT-GROUP: kind=direct cyclic=false blocks=1 bytes=7 function~=leak_bytes
// EXPECT-EXIT: 23
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void leak_bytes(size_t n) {
    char *p = malloc(n);
    memset(p, 4, n);
}

__attribute__((noinline)) static void clear_stack(void) {
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
}

static int wait_for(pid_t pid) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "exec-child") == 0) {
        leak_bytes(13);
        clear_stack();
        return 0;
    }
    /* Allocations before the fork, freed by both processes. */
    char *shared = strdup("shared before fork");
    pid_t child = fork();
    if (child == 0) {
        free(shared);
        leak_bytes(11);
        clear_stack();
        exit(0);
    }
    printf("forked child exit status %d\n", wait_for(child));
    pid_t execd = fork();
    if (execd == 0) {
        char *args[] = {argv[0], "exec-child", NULL};
        execv("/proc/self/exe", args);
        _exit(99);
    }
    printf("exec'd child exit status %d\n", wait_for(execd));
    fflush(stdout);
    free(shared);
    leak_bytes(7);
    clear_stack();
    return 0;
}
